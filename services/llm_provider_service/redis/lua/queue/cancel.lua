-- Cancel: only a request that is still waiting; the status check and the removal from every
-- waiting structure happen together, so a worker cannot claim it in between. On the batch
-- lane (BATCH_LANE) a PROCESSING request too: it sits in a provider batch, and its lease
-- goes stale at once, so its result, if it ever comes, changes nothing.
-- KEYS[19] the record. Its provider's `ready` set is learned from the record (the exception
-- in _lib.lua). ARGV[7] id. Returns 'ok', 'missing', or the current status when not
-- cancellable.
local id, record = ARGV[7], KEYS[19]
local h = redis.call('HMGET', record, 'status', 'provider', 'priority', 'queued_at',
                     'expires_at')
if not h[1] then return 'missing' end
if BATCH_LANE and h[1] == 'processing' then
  redis.call('ZREM', LEASES, id)
  finish(id, record, 'cancelled', now_ms(), false)
  return 'ok'
end
if h[1] ~= 'queued' then return h[1] end
redis.call('ZREM', ready(h[2]), id)
redis.call('ZREM', DELAYED, id)
count_waiting(id, h[2], h[3], h[4], h[5], -1)
finish(id, record, 'cancelled', now_ms(), false)
return 'ok'
