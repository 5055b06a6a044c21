-- Hold a spill for one replica (it polls and ingests the spill's batch alone), or extend
-- that replica's hold. Atomic so that two replicas never both see themselves as holder: a
-- GET then SET from Python could extend a hold another replica took in between.
-- KEYS[1] the spill's hold, KEYS[2] the spill's record; ARGV[1] owner, ARGV[2] hold ms.
if redis.call('EXISTS', KEYS[2]) == 0 then
  return 0  -- finished: nothing to hold
end
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
