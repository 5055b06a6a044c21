-- Heartbeat: extend the lease only if the caller still holds the current token, so a worker
-- that lost its lease cannot keep a request from being reclaimed.
-- KEYS[19] the record. ARGV[7] id, [8] token, [9] lease ms. Returns 1 if extended, 0 for a
-- stale lease.
local id, token, record = ARGV[7], ARGV[8], KEYS[19]
if not holds(record, token) then return 0 end
local deadline = now_ms() + tonumber(ARGV[9])
redis.call('ZADD', LEASES, s(deadline), id)
redis.call('HSET', record, 'lease_deadline', s(deadline))
return 1
