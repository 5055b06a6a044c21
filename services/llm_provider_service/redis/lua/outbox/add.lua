-- Add a delivery unless its id is already known (a repeated announcement adds nothing).
-- KEYS[5] the delivery's hash, [6] its request's index. ARGV[3] id, [4] request id, [5] the
-- delivery JSON without payload, [6] payload, [7] channel.
-- Returns 1 if added, 0 if it was already there.
local id, delivery = ARGV[3], KEYS[5]
if redis.call('EXISTS', delivery) == 1 then return 0 end
local now = now_ms()
redis.call('HSET', delivery, 'record', ARGV[5], 'payload', ARGV[6], 'request_id', ARGV[4],
           'state', 'pending', 'attempts', '0', 'next_attempt_at', s(now))
redis.call('ZADD', DUE, s(now), id)
redis.call('ZADD', CREATED[ARGV[7]], s(now), id)
redis.call('SADD', KEYS[6], id)
return 1
