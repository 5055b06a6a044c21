-- Enqueue, atomically and idempotently: an existing id is returned untouched, and the depth
-- check, the record and its place in the order are written together or not at all.
-- ARGV[7] id, [8] provider, [9] priority, [10] ttl ms, [11] boost ms per priority level,
-- [12] max size, [13] max attempts, [14] job JSON, [15] correlation id, [16] delay ms,
-- [17] the caller's name ('' for none), [18] how many requests the caller may have waiting
-- or running at once (0: no limit), [19] the job as kept once its result is announced
-- ('' for none; see announced.lua).
-- KEYS[19] the record, [20] the provider's `ready` set, [21] the caller's `active` set (only
-- when the request has a caller).
-- Returns {0, record} if the id existed, {-1} if the queue is full, {-2} if the caller is at
-- its limit, else {1, record}, where record is the hash as HGETALL returns it (no second
-- round trip that could fail after the enqueue succeeded).
local id, provider, priority = ARGV[7], ARGV[8], tonumber(ARGV[9])
local caller, caller_limit = ARGV[17], tonumber(ARGV[18])
local record, ready_set, active_set = KEYS[19], KEYS[20], KEYS[21]
if redis.call('EXISTS', record) == 1 then return {0, redis.call('HGETALL', record)} end
if redis.call('ZCARD', EXPIRY) >= tonumber(ARGV[12]) then return {-1} end
if caller ~= '' and caller_limit > 0 and caller_at_limit(active_set, caller_limit) then
  return {-2}
end
local now = now_ms()
local expires_at = now + tonumber(ARGV[10])
-- Priority is a time credit (see queue/config.py order_score), times 1000 plus the arrival
-- number within this millisecond, so that same-millisecond enqueues keep their order (the
-- number restarts every millisecond; past 999 in one millisecond, ties fall back to id
-- order). Stays below 2^53 (exact in a sorted-set score) until the year 2255.
local seq = 0
if tonumber(redis.call('HGET', SEQ, 'ms') or '-1') == now then
  seq = math.min(redis.call('HINCRBY', SEQ, 'n', 1), 999)
else
  redis.call('HSET', SEQ, 'ms', s(now), 'n', '0')
end
local score = (now - priority * tonumber(ARGV[11])) * 1000 + seq
redis.call('HSET', record,
  'status', 'queued', 'provider', provider, 'priority', s(priority), 'score', s(score),
  'attempts', '0', 'max_attempts', ARGV[13], 'queued_at', s(now), 'updated_at', s(now),
  'expires_at', s(expires_at), 'token', '0', 'job', ARGV[14], 'correlation_id', ARGV[15])
if ARGV[19] ~= '' then redis.call('HSET', record, 'job_announced', ARGV[19]) end
if caller ~= '' then
  redis.call('HSET', record, 'caller', caller)
  redis.call('ZADD', active_set, s(expires_at), id)
end
count_waiting(id, provider, priority, now, expires_at, 1)
local delay = tonumber(ARGV[16])
if delay > 0 and now + delay < expires_at then
  redis.call('HSET', record, 'not_before', s(now + delay))
  redis.call('ZADD', DELAYED, s(now + delay), id)
else
  make_ready(id, ready_set, score)
end
return {1, redis.call('HGETALL', record)}
