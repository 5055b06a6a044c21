-- Cancel: only a request that is still waiting; the status check and the removal from every
-- waiting structure happen together, so a worker cannot claim it in between.
-- ARGV[7] id. Returns 'ok', 'missing', or the current status when not cancellable.
local id = ARGV[7]
local h = redis.call('HMGET', req(id), 'status', 'provider', 'priority', 'queued_at',
                     'expires_at')
if not h[1] then return 'missing' end
if h[1] ~= 'queued' then return h[1] end
redis.call('ZREM', key('ready:' .. h[2]), id)
redis.call('ZREM', key('delayed'), id)
count_waiting(id, h[2], h[3], h[4], h[5], -1)
finish(id, 'cancelled', now_ms(), false)
return 'ok'
