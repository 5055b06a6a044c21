-- Release: give a leased request back unspent (shutdown, or the breaker opened mid-flight),
-- at its original place in the order; only for the current token.
-- KEYS[19] the record, [20] its provider's `ready` set. ARGV[7] id, [8] token. Returns 1, or
-- 0 for a stale lease.
local id, token, record = ARGV[7], ARGV[8], KEYS[19]
if not holds(record, token) then return 0 end
local now = now_ms()
redis.call('ZREM', LEASES, id)
redis.call('HINCRBY', record, 'attempts', -1)
redis.call('HSET', record, 'status', 'queued', 'token', '0', 'updated_at', s(now))
local h = redis.call('HMGET', record, 'provider', 'priority', 'score', 'queued_at', 'expires_at')
count_waiting(id, h[1], h[2], h[4], h[5], 1)
make_ready(id, KEYS[20], h[3])
return 1
