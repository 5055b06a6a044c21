-- Complete: record the result and end the lease in one step, only for the current token; a
-- late result from a worker whose lease was reclaimed is rejected (exactly one result).
-- Idempotent for the token that completed it with this very result: a worker whose reply was
-- lost (Redis paused, connection dropped) may send it again and learns that its write
-- landed; any other result for an ended request changes nothing and returns 0.
-- ARGV[7] id, [8] token, [9] result JSON. Returns 1, or 0 for a stale lease.
local id, token = ARGV[7], ARGV[8]
local h = redis.call('HMGET', req(id), 'status', 'completed_by', 'result')
if h[1] == 'completed' and h[2] == token and h[3] == ARGV[9] then return 1 end
if not holds(id, token) then return 0 end
redis.call('ZREM', key('leases'), id)
redis.call('HSET', req(id), 'result', ARGV[9], 'completed_by', token)
finish(id, 'completed', now_ms(), false)
return 1
