-- Not acknowledged: due again after the delay. ARGV[3] id, [4] delay ms, [5] error.
local id = ARGV[3]
if redis.call('HGET', d(id), 'state') ~= 'pending' then return 0 end
local at = now_ms() + tonumber(ARGV[4])
redis.call('ZADD', DUE, s(at), id)
redis.call('HSET', d(id), 'last_error', ARGV[5], 'next_attempt_at', s(at))
return 1
