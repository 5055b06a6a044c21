-- Not acknowledged: due again after the delay. KEYS[5] the delivery's hash. ARGV[3] id,
-- [4] delay ms, [5] error.
local id, delivery = ARGV[3], KEYS[5]
if redis.call('HGET', delivery, 'state') ~= 'pending' then return 0 end
local at = now_ms() + tonumber(ARGV[4])
redis.call('ZADD', DUE, s(at), id)
redis.call('HSET', delivery, 'last_error', ARGV[5], 'next_attempt_at', s(at))
return 1
