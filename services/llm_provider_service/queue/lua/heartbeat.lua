-- Heartbeat: extend the lease only if the caller still holds the current token, so a worker
-- that lost its lease cannot keep a request from being reclaimed.
-- ARGV[7] id, [8] token, [9] lease ms. Returns 1 if extended, 0 for a stale lease.
local id, token = ARGV[7], ARGV[8]
if not holds(id, token) then return 0 end
local deadline = now_ms() + tonumber(ARGV[9])
redis.call('ZADD', key('leases'), s(deadline), id)
redis.call('HSET', req(id), 'lease_deadline', s(deadline))
return 1
