-- Mark announced: the ended request's result event is in the outbox. In the same step its
-- record drops the copy of the request it no longer needs (`job` becomes `job_announced`, the
-- form without essays and prompt that enqueue stored beside it; records enqueued by a
-- version that stored none keep their job), joins `ended` with its size, and the bounds on
-- ended records are applied (see trim_ended in _lib.lua).
-- KEYS[19] the record. ARGV[7] id. Returns 1.
local id, record = ARGV[7], KEYS[19]
redis.call('ZREM', UNANNOUNCED, id)
local h = redis.call('HMGET', record, 'status', 'job_announced')
if h[1] and h[1] ~= 'queued' and h[1] ~= 'processing' then
  if h[2] then
    redis.call('HSET', record, 'job', h[2])
    redis.call('HDEL', record, 'job_announced')
  end
  measure_ended(id, record)
  trim_ended()
end
return 1
