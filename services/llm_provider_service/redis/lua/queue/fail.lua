-- Fail an attempt, atomically: either schedule the retry (never past expires_at, never past
-- max attempts) or end the request FAILED with its last error; only for the current token.
-- KEYS[19] the record. ARGV[7] id, [8] token, [9] error JSON, [10] retry delay ms (negative:
-- do not retry).
-- Returns 'queued', 'failed', or '' for a stale lease.
local id, token, retry_ms = ARGV[7], ARGV[8], tonumber(ARGV[10])
local record = KEYS[19]
if not holds(record, token) then return '' end
local now = now_ms()
redis.call('ZREM', LEASES, id)
local h = redis.call('HMGET', record, 'provider', 'priority', 'attempts', 'max_attempts',
                     'queued_at', 'expires_at')
local not_before = now + retry_ms
if retry_ms >= 0 and tonumber(h[3]) < tonumber(h[4]) and not_before < tonumber(h[6]) then
  redis.call('HSET', record, 'status', 'queued', 'token', '0', 'updated_at', s(now),
             'not_before', s(not_before))
  redis.call('ZADD', DELAYED, s(not_before), id)
  count_waiting(id, h[1], h[2], h[5], h[6], 1)
  return 'queued'
end
finish(id, record, 'failed', now, ARGV[9])
return 'failed'
