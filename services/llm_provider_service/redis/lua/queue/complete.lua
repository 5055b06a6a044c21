-- Complete: record the result and end the lease in one step, only for the current token; a
-- late result from a worker whose lease was reclaimed is rejected (exactly one result).
-- Idempotent for the token that completed it with this very result: a worker whose reply was
-- lost (Redis paused, connection dropped) may send it again and learns that its write
-- landed; any other result for an ended request changes nothing and returns 0.
-- KEYS[19] the record. ARGV[7] id, [8] token, [9] result JSON. Returns 1, or 0 for a stale
-- lease.
local id, token, record = ARGV[7], ARGV[8], KEYS[19]
local h = redis.call('HMGET', record, 'status', 'completed_by', 'result')
if h[1] == 'completed' and h[2] == token and h[3] == ARGV[9] then return 1 end
if not holds(record, token) then return 0 end
redis.call('ZREM', LEASES, id)
redis.call('HSET', record, 'result', ARGV[9], 'completed_by', token)
finish(id, record, 'completed', now_ms(), false)
return 1
