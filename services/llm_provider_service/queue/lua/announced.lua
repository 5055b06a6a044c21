-- Mark announced: the ended request's result event is in the outbox. In the same step its
-- record drops the copy of the request it no longer needs (`job` becomes `job_announced`, the
-- form without essays and prompt that enqueue stored beside it; records enqueued by a
-- version that stored none keep their job), joins `ended` with its size, and the bounds on
-- ended records are applied (see trim_ended in _lib.lua).
-- ARGV[7] id. Returns 1.
local id = ARGV[7]
redis.call('ZREM', key('unannounced'), id)
local h = redis.call('HMGET', req(id), 'status', 'job_announced')
if h[1] and h[1] ~= 'queued' and h[1] ~= 'processing' then
  if h[2] then
    redis.call('HSET', req(id), 'job', h[2])
    redis.call('HDEL', req(id), 'job_announced')
  end
  measure_ended(id)
  trim_ended()
end
return 1
