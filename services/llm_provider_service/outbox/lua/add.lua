-- Add a delivery unless its id is already known (a repeated announcement adds nothing).
-- ARGV[3] id, [4] request id, [5] the delivery JSON without payload, [6] payload,
-- [7] channel.
-- Returns 1 if added, 0 if it was already there.
local id = ARGV[3]
if redis.call('EXISTS', d(id)) == 1 then return 0 end
local now = now_ms()
redis.call('HSET', d(id), 'record', ARGV[5], 'payload', ARGV[6], 'request_id', ARGV[4],
           'state', 'pending', 'attempts', '0', 'next_attempt_at', s(now))
redis.call('ZADD', DUE, s(now), id)
redis.call('ZADD', created(ARGV[7]), s(now), id)
redis.call('SADD', by_request(ARGV[4]), id)
return 1
