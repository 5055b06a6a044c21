-- Shared prelude, prepended to every queue script so that each script is one atomic unit.
--
-- KEYS[1] to KEYS[18]: the queue's shared keys, in the order below (`RedisRequestQueue`
-- passes them, named by `RedisKeys`). A script about one request it is told of receives that
-- request's keys after them, from KEYS[19] (see each script's header).
-- The one exception (for the Redis Cluster issue; documentation/queue.md, "Redis Cluster"):
-- a key the script learns only inside itself, i.e. the record `req:<id>` of an id read from a
-- sorted set, and `ready:<provider>` or `active:<caller>` of a provider or caller read from a
-- record, is named from the prefix in ARGV[1] by `req`, `ready` and `active` below. Every key
-- shares the prefix's hash tag, so all of them are in the slot of KEYS[1].
--
-- ARGV[1] key prefix with its hash tag, e.g. "{llmq}" (only for those learned keys).
-- ARGV[2] milliseconds added to server TIME: 0 in production; tests move time with it.
-- ARGV[3] result retention in ms; ARGV[4] / ARGV[5] the error JSON recorded on expiry and on
--         a lease that expired with every attempt spent; ARGV[6] how many ids one reap may touch.
-- Script-specific arguments start at ARGV[7]. The last three arguments of every call are the
-- bounds on ended records, ARGV[#ARGV - 2] bytes and ARGV[#ARGV - 1] count (see trim_ended),
-- and ARGV[#ARGV] '1' for the batch lane's queue, else '0' (see BATCH_LANE).
--
-- Server TIME is the only clock: replicas and workers with skewed clocks agree on deadlines.

local FENCE, DELAYED, LEASES, EXPIRY = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ENQUEUED, RETENTION, UNANNOUNCED = KEYS[5], KEYS[6], KEYS[7]
local DEPTH, PRIO, SEQ, WAKE = KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local ENDED, ENDED_SIZE, ENDED_BYTES, ENDED_SEQ = KEYS[12], KEYS[13], KEYS[14], KEYS[15]
local REAPED_EXPIRED, REAPED_FAILED, REAPED_COUNTS = KEYS[16], KEYS[17], KEYS[18]

local P = ARGV[1]
local OFFSET = tonumber(ARGV[2])
local RETENTION_MS = tonumber(ARGV[3])
local EXPIRED_ERROR = ARGV[4]
local LEASE_ERROR = ARGV[5]
local REAP_LIMIT = tonumber(ARGV[6])
local RESULT_MAX_BYTES = tonumber(ARGV[#ARGV - 2])
local RESULT_MAX_COUNT = tonumber(ARGV[#ARGV - 1])
-- The batch lane (documentation/queue.md, "Batch lane"): a PROCESSING request sits in a
-- provider batch and nothing runs for it here, so it may be cancelled (cancel.lua) and it
-- expires at its TTL (`reap`). For that it stays in EXPIRY while PROCESSING (claim.lua adds
-- it back, `finish` removes it), so in this lane EXPIRY holds waiting and batched requests.
-- Off for the realtime queue, whose scripts then behave exactly as before the lane existed.
local BATCH_LANE = ARGV[#ARGV] == '1'

-- The learned keys (the exception above); their names are those of `RedisKeys`.
local function req(id) return P .. ':req:' .. id end
local function ready(provider) return P .. ':ready:' .. provider end
local function active(caller) return P .. ':active:' .. caller end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + OFFSET
end

-- Integers go to Redis as decimal strings: a Lua number may otherwise be sent in exponent
-- form, which would corrupt millisecond timestamps and scores read back as integers.
local function s(n) return string.format('%d', tonumber(n)) end

-- Bookkeeping for a request entering or leaving the waiting states (ready or delayed):
-- `expiry` drives TTLs, `enqueued` the oldest-age metric, `depth`/`prio` the counters.
local function count_waiting(id, provider, priority, queued_at, expires_at, delta)
  if delta > 0 then
    redis.call('ZADD', EXPIRY, s(expires_at), id)
    redis.call('ZADD', ENQUEUED, s(queued_at), id)
  else
    redis.call('ZREM', EXPIRY, id)
    redis.call('ZREM', ENQUEUED, id)
  end
  redis.call('HINCRBY', DEPTH, provider, delta)
  redis.call('HINCRBY', PRIO, s(priority), delta)
end

-- An id whose record is missing (deleted by hand, or a bug): drop it from every set rather
-- than fail every script that meets it.
local function forget_waiting(id)
  for _, set in ipairs({EXPIRY, ENQUEUED, DELAYED, LEASES, RETENTION}) do
    redis.call('ZREM', set, id)
  end
end

-- `ready_set` is the request's provider's `ready:<provider>`.
local function make_ready(id, ready_set, score)
  redis.call('ZADD', ready_set, s(score), id)
  redis.call('LPUSH', WAKE, '1')
  redis.call('LTRIM', WAKE, 0, 63)
end

-- A caller's requests that are waiting or running (`active_set`, its `active:<caller>`), for
-- its `max_queued` quota: `finish` removes each as it ends. At the limit, the set is checked
-- first: any id whose record ended or vanished without that (ended by a version that kept no
-- such set, or deleted by hand) is dropped, so the count is exact whenever it refuses.
local function caller_at_limit(active_set, limit)
  if redis.call('ZCARD', active_set) < limit then return false end
  for _, id in ipairs(redis.call('ZRANGE', active_set, 0, -1)) do
    local status = redis.call('HGET', req(id), 'status')
    if status ~= 'queued' and status ~= 'processing' then redis.call('ZREM', active_set, id) end
  end
  return redis.call('ZCARD', active_set) >= limit
end

-- Ended records, bounded. Once its result is announced (announced.lua), an ended id joins
-- `ended` (score: a sequence number, so the order of announcement), `ended:size` keeps its
-- bytes as stored (field names and values) and `ended:bytes` their sum. While over
-- RESULT_MAX_COUNT ids or RESULT_MAX_BYTES bytes, the oldest are deleted. Waiting, running
-- and unannounced requests are never in `ended` (the check below is a safeguard): a result
-- still owed to the outbox is kept whole, outside the bounds, until the relay hands it over.
-- One pass looks at most REAP_LIMIT ids.
local function record_bytes(record)
  local n = 0
  for _, field in ipairs(redis.call('HKEYS', record)) do
    n = n + #field + redis.call('HSTRLEN', record, field)
  end
  return n
end

-- `record` is the key of `id`'s record.
local function measure_ended(id, record)
  local size = record_bytes(record)
  local before = tonumber(redis.call('HGET', ENDED_SIZE, id) or '0')
  redis.call('HSET', ENDED_SIZE, id, s(size))
  redis.call('INCRBY', ENDED_BYTES, s(size - before))
  if not redis.call('ZSCORE', ENDED, id) then
    redis.call('ZADD', ENDED, s(redis.call('INCR', ENDED_SEQ)), id)
  end
end

local function forget_ended(id)
  local size = redis.call('HGET', ENDED_SIZE, id)
  if size then
    redis.call('HDEL', ENDED_SIZE, id)
    redis.call('DECRBY', ENDED_BYTES, size)
  end
  redis.call('ZREM', ENDED, id)
end

local function over_budget()
  return redis.call('ZCARD', ENDED) > RESULT_MAX_COUNT
      or tonumber(redis.call('GET', ENDED_BYTES) or '0') > RESULT_MAX_BYTES
end

local function trim_ended()
  local skipped, looked = 0, 0
  while looked < REAP_LIMIT and over_budget() do
    local id = redis.call('ZRANGE', ENDED, skipped, skipped)[1]
    if not id then return end
    looked = looked + 1
    if redis.call('ZSCORE', UNANNOUNCED, id) then
      skipped = skipped + 1
    else
      local status = redis.call('HGET', req(id), 'status')
      forget_ended(id)
      if status ~= 'queued' and status ~= 'processing' then
        redis.call('ZREM', RETENTION, id)
        redis.call('DEL', req(id))
      end
    end
  end
end

-- A terminal status never changes again; the record stays readable for the retention.
-- In the same step the id joins `unannounced`: its result event is owed to the outbox, and
-- the record is kept past its retention until the relay has handed that event over.
-- `record` is the key of `id`'s record; the caller's `active` set is learned from it.
local function finish(id, record, status, now, error_json)
  local caller = redis.call('HGET', record, 'caller')
  if caller then redis.call('ZREM', active(caller), id) end
  redis.call('HSET', record, 'status', status, 'updated_at', s(now), 'token', '0')
  if error_json then redis.call('HSET', record, 'error', error_json) end
  redis.call('ZADD', RETENTION, s(now + RETENTION_MS), id)
  redis.call('ZADD', UNANNOUNCED, s(now), id)
  if BATCH_LANE then redis.call('ZREM', EXPIRY, id) end
end

-- The holder of `token` still owns the lease of the request whose record is `record`; a
-- stale worker's call changes nothing.
local function holds(record, token)
  local h = redis.call('HMGET', record, 'status', 'token')
  return h[1] == 'processing' and h[2] == token
end

-- Housekeeping that must run even when nothing is claimed; returns what it changed. Every
-- id it meets is read from a sorted set, so their records are learned keys (`req`).
local function reap_leases(now, found)
  local fields = {'status', 'provider', 'priority', 'score', 'attempts', 'max_attempts',
                  'queued_at', 'expires_at'}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', LEASES, '-inf', now,
                                 'LIMIT', 0, REAP_LIMIT)) do
    redis.call('ZREM', LEASES, id)
    local h = redis.call('HMGET', req(id), unpack(fields))
    if not h[1] then
      forget_waiting(id)
    elseif h[1] == 'processing' then
      found[3] = found[3] + 1
      if now >= tonumber(h[8]) then
        finish(id, req(id), 'expired', now, EXPIRED_ERROR)
        table.insert(found[1], id)
      elseif tonumber(h[5]) >= tonumber(h[6]) then
        finish(id, req(id), 'failed', now, LEASE_ERROR)
        table.insert(found[2], id)
      else
        redis.call('HSET', req(id), 'status', 'queued', 'token', '0', 'updated_at', s(now))
        count_waiting(id, h[2], h[3], h[7], h[8], 1)
        make_ready(id, ready(h[2]), h[4])
      end
    end
  end
end

local function reap(now)
  local found = {{}, {}, 0, 0}  -- expired ids, failed ids, lease expiries, promoted
  reap_leases(now, found)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', now,
                                 'LIMIT', 0, REAP_LIMIT)) do
    local h = redis.call('HMGET', req(id), 'provider', 'priority', 'queued_at', 'expires_at',
                         'status')
    if not h[1] then
      forget_waiting(id)
    elseif BATCH_LANE and h[5] == 'processing' then
      -- In a provider batch past its TTL: expired now, so a late result finds a stale lease.
      redis.call('ZREM', LEASES, id)
      finish(id, req(id), 'expired', now, EXPIRED_ERROR)
      table.insert(found[1], id)
    elseif BATCH_LANE and h[5] ~= 'queued' then
      redis.call('ZREM', EXPIRY, id)  -- ended already (a safeguard: `finish` removes it)
    else
      redis.call('ZREM', ready(h[1]), id)
      redis.call('ZREM', DELAYED, id)
      count_waiting(id, h[1], h[2], h[3], h[4], -1)
      finish(id, req(id), 'expired', now, EXPIRED_ERROR)
      table.insert(found[1], id)
    end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now,
                                 'LIMIT', 0, REAP_LIMIT)) do
    redis.call('ZREM', DELAYED, id)
    local h = redis.call('HMGET', req(id), 'status', 'provider', 'score')
    if h[1] == 'queued' then
      redis.call('HDEL', req(id), 'not_before')
      make_ready(id, ready(h[2]), h[3])
      found[4] = found[4] + 1
    end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', RETENTION, '-inf', now,
                                 'LIMIT', 0, REAP_LIMIT)) do
    if redis.call('ZSCORE', UNANNOUNCED, id) then
      redis.call('ZADD', RETENTION, s(now + RETENTION_MS), id)  -- its result is owed
    else
      redis.call('ZREM', RETENTION, id)
      redis.call('DEL', req(id))
      forget_ended(id)
    end
  end
  return found
end
