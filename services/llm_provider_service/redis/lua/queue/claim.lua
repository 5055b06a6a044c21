-- Claim, atomically: reap first (so nothing past its TTL is ever leased), then pop up to n
-- ids in score order, each with a fresh fence token and one more attempt, into `leases`.
-- KEYS[19] the provider's `ready` set. The popped ids' records are learned keys (the
-- exception in _lib.lua). ARGV[7] provider, [8] limit, [9] owner, [10] lease ms.
-- What the reap found is handed on through Redis (`reaped:*`, reported by the next reap.lua
-- of any worker), so it is reported even if this process stops first.
-- Returns {{id, token, attempts, job, queued_at, claimed_at, expires_at}, ...}.
local provider, limit, owner, lease_ms = ARGV[7], tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10])
local ready_set = KEYS[19]
local now = now_ms()
local found = reap(now)
local leases = {}
local function lease(id, h)
  count_waiting(id, provider, h[1], h[2], h[3], -1)
  local token = tostring(redis.call('INCR', FENCE))
  local attempts = redis.call('HINCRBY', req(id), 'attempts', 1)
  redis.call('HSET', req(id), 'status', 'processing', 'token', token, 'owner', owner,
             'updated_at', s(now), 'lease_deadline', s(now + lease_ms))
  redis.call('ZADD', LEASES, s(now + lease_ms), id)
  if BATCH_LANE then redis.call('ZADD', EXPIRY, h[3], id) end  -- expires while batched
  table.insert(leases, {id, token, attempts, h[4], h[2], s(now), h[3]})
end
if limit > 0 then
  for _, id in ipairs(redis.call('ZRANGE', ready_set, 0, limit - 1)) do
    redis.call('ZREM', ready_set, id)
    local h = redis.call('HMGET', req(id), 'priority', 'queued_at', 'expires_at', 'job')
    if not h[1] then
      forget_waiting(id)  -- its record is gone (deleted by hand?): never wedge the queue
    elseif now >= tonumber(h[3]) then
      -- Past its TTL but beyond what this reap could reach: expire it, never lease it.
      count_waiting(id, provider, h[1], h[2], h[3], -1)
      finish(id, req(id), 'expired', now, EXPIRED_ERROR)
      table.insert(found[1], id)
    else
      lease(id, h)
    end
  end
end
local function hand_on(list, ids)
  for i = 1, #ids, 1000 do
    redis.call('RPUSH', list, unpack(ids, i, math.min(i + 999, #ids)))
  end
  redis.call('PEXPIRE', list, RETENTION_MS)  -- never kept longer than the records
end
if #found[1] > 0 then hand_on(REAPED_EXPIRED, found[1]) end
if #found[2] > 0 then hand_on(REAPED_FAILED, found[2]) end
if found[3] > 0 or found[4] > 0 then
  redis.call('HINCRBY', REAPED_COUNTS, 'lease_expiries', found[3])
  redis.call('HINCRBY', REAPED_COUNTS, 'promoted', found[4])
  redis.call('PEXPIRE', REAPED_COUNTS, RETENTION_MS)
end
return leases
