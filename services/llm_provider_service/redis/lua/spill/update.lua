-- Change a spill that is still open, never one already finished: a replica that finished
-- it races one that recorded its batch or settled an entry late, and a write after the
-- finish would leave a record (or settled set) that no one ever deletes.
-- KEYS[1] the spill's record, KEYS[2] its settled set.
-- ARGV[1] "submitted" with ARGV[2] the batch JSON; or "settle" with ARGV[2..] custom ids.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if ARGV[1] == 'submitted' then
  redis.call('HSET', KEYS[1], 'state', 'submitted', 'batch', ARGV[2])
else
  for i = 2, #ARGV do
    redis.call('SADD', KEYS[2], ARGV[i])
  end
end
return 1
