-- Shared prelude, prepended to every queue script so that each script is one atomic unit.
--
-- ARGV[1] key prefix with its hash tag, e.g. "{llmq}"; every key below shares the tag, so a
--         Redis Cluster keeps them in one slot (KEYS[1] is passed only to route the call).
-- ARGV[2] milliseconds added to server TIME: 0 in production; tests move time with it.
-- ARGV[3] result retention in ms; ARGV[4] / ARGV[5] the error JSON recorded on expiry and on
--         a lease that expired with every attempt spent; ARGV[6] how many ids one reap may touch.
-- Script-specific arguments start at ARGV[7]. The last two arguments of every call are the
-- bounds on ended records: ARGV[#ARGV - 1] bytes, ARGV[#ARGV] count (see trim_ended).
--
-- Server TIME is the only clock: replicas and workers with skewed clocks agree on deadlines.

local P = ARGV[1]
local OFFSET = tonumber(ARGV[2])
local RETENTION_MS = tonumber(ARGV[3])
local EXPIRED_ERROR = ARGV[4]
local LEASE_ERROR = ARGV[5]
local REAP_LIMIT = tonumber(ARGV[6])
local RESULT_MAX_BYTES = tonumber(ARGV[#ARGV - 1])
local RESULT_MAX_COUNT = tonumber(ARGV[#ARGV])

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + OFFSET
end

-- Integers go to Redis as decimal strings: a Lua number may otherwise be sent in exponent
-- form, which would corrupt millisecond timestamps and scores read back as integers.
local function s(n) return string.format('%d', tonumber(n)) end

local function key(name) return P .. ':' .. name end
local function req(id) return P .. ':req:' .. id end

-- Bookkeeping for a request entering or leaving the waiting states (ready or delayed):
-- `expiry` drives TTLs, `enqueued` the oldest-age metric, `depth`/`prio` the counters.
local function count_waiting(id, provider, priority, queued_at, expires_at, delta)
  if delta > 0 then
    redis.call('ZADD', key('expiry'), s(expires_at), id)
    redis.call('ZADD', key('enqueued'), s(queued_at), id)
  else
    redis.call('ZREM', key('expiry'), id)
    redis.call('ZREM', key('enqueued'), id)
  end
  redis.call('HINCRBY', key('depth'), provider, delta)
  redis.call('HINCRBY', key('prio'), s(priority), delta)
end

-- An id whose record is missing (deleted by hand, or a bug): drop it from every set rather
-- than fail every script that meets it.
local function forget_waiting(id)
  for _, name in ipairs({'expiry', 'enqueued', 'delayed', 'leases', 'retention'}) do
    redis.call('ZREM', key(name), id)
  end
end

local function make_ready(id, provider, score)
  redis.call('ZADD', key('ready:' .. provider), s(score), id)
  redis.call('LPUSH', key('wake'), '1')
  redis.call('LTRIM', key('wake'), 0, 63)
end

-- A caller's requests that are waiting or running, for its `max_queued` quota: `finish`
-- removes each as it ends. At the limit, the set is checked first: any id whose record
-- ended or vanished without that (ended by a version that kept no such set, or deleted by
-- hand) is dropped, so the count is exact whenever it refuses a request.
local function caller_at_limit(caller, limit)
  local active = key('active:' .. caller)
  if redis.call('ZCARD', active) < limit then return false end
  for _, id in ipairs(redis.call('ZRANGE', active, 0, -1)) do
    local status = redis.call('HGET', req(id), 'status')
    if status ~= 'queued' and status ~= 'processing' then redis.call('ZREM', active, id) end
  end
  return redis.call('ZCARD', active) >= limit
end

-- Ended records, bounded. Once its result is announced (announced.lua), an ended id joins
-- `ended` (score: a sequence number, so the order of announcement), `ended:size` keeps its
-- bytes as stored (field names and values) and `ended:bytes` their sum. While over
-- RESULT_MAX_COUNT ids or RESULT_MAX_BYTES bytes, the oldest are deleted. Waiting, running
-- and unannounced requests are never in `ended` (the check below is a safeguard): a result
-- still owed to the outbox is kept whole, outside the bounds, until the relay hands it over.
-- One pass looks at most REAP_LIMIT ids.
local function record_bytes(id)
  local n = 0
  for _, field in ipairs(redis.call('HKEYS', req(id))) do
    n = n + #field + redis.call('HSTRLEN', req(id), field)
  end
  return n
end

local function measure_ended(id)
  local size = record_bytes(id)
  local before = tonumber(redis.call('HGET', key('ended:size'), id) or '0')
  redis.call('HSET', key('ended:size'), id, s(size))
  redis.call('INCRBY', key('ended:bytes'), s(size - before))
  if not redis.call('ZSCORE', key('ended'), id) then
    redis.call('ZADD', key('ended'), s(redis.call('INCR', key('ended:seq'))), id)
  end
end

local function forget_ended(id)
  local size = redis.call('HGET', key('ended:size'), id)
  if size then
    redis.call('HDEL', key('ended:size'), id)
    redis.call('DECRBY', key('ended:bytes'), size)
  end
  redis.call('ZREM', key('ended'), id)
end

local function over_budget()
  return redis.call('ZCARD', key('ended')) > RESULT_MAX_COUNT
      or tonumber(redis.call('GET', key('ended:bytes')) or '0') > RESULT_MAX_BYTES
end

local function trim_ended()
  local skipped, looked = 0, 0
  while looked < REAP_LIMIT and over_budget() do
    local id = redis.call('ZRANGE', key('ended'), skipped, skipped)[1]
    if not id then return end
    looked = looked + 1
    if redis.call('ZSCORE', key('unannounced'), id) then
      skipped = skipped + 1
    else
      local status = redis.call('HGET', req(id), 'status')
      forget_ended(id)
      if status ~= 'queued' and status ~= 'processing' then
        redis.call('ZREM', key('retention'), id)
        redis.call('DEL', req(id))
      end
    end
  end
end

-- A terminal status never changes again; the record stays readable for the retention.
-- In the same step the id joins `unannounced`: its result event is owed to the outbox, and
-- the record is kept past its retention until the relay has handed that event over.
local function finish(id, status, now, error_json)
  local caller = redis.call('HGET', req(id), 'caller')
  if caller then redis.call('ZREM', key('active:' .. caller), id) end
  redis.call('HSET', req(id), 'status', status, 'updated_at', s(now), 'token', '0')
  if error_json then redis.call('HSET', req(id), 'error', error_json) end
  redis.call('ZADD', key('retention'), s(now + RETENTION_MS), id)
  redis.call('ZADD', key('unannounced'), s(now), id)
end

-- The holder of `token` still owns `id`'s lease; a stale worker's call changes nothing.
local function holds(id, token)
  local h = redis.call('HMGET', req(id), 'status', 'token')
  return h[1] == 'processing' and h[2] == token
end

-- Housekeeping that must run even when nothing is claimed; returns what it changed.
local function reap(now)
  local expired, failed, lease_expiries, promoted = {}, {}, 0, 0
  local fields = {'status', 'provider', 'priority', 'score', 'attempts', 'max_attempts',
                  'queued_at', 'expires_at'}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', key('leases'), '-inf', now,
                                 'LIMIT', 0, REAP_LIMIT)) do
    redis.call('ZREM', key('leases'), id)
    local h = redis.call('HMGET', req(id), unpack(fields))
    if not h[1] then
      forget_waiting(id)
    elseif h[1] == 'processing' then
      lease_expiries = lease_expiries + 1
      if now >= tonumber(h[8]) then
        finish(id, 'expired', now, EXPIRED_ERROR)
        table.insert(expired, id)
      elseif tonumber(h[5]) >= tonumber(h[6]) then
        finish(id, 'failed', now, LEASE_ERROR)
        table.insert(failed, id)
      else
        redis.call('HSET', req(id), 'status', 'queued', 'token', '0', 'updated_at', s(now))
        count_waiting(id, h[2], h[3], h[7], h[8], 1)
        make_ready(id, h[2], h[4])
      end
    end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', key('expiry'), '-inf', now,
                                 'LIMIT', 0, REAP_LIMIT)) do
    local h = redis.call('HMGET', req(id), 'provider', 'priority', 'queued_at', 'expires_at')
    if not h[1] then
      forget_waiting(id)
    else
      redis.call('ZREM', key('ready:' .. h[1]), id)
      redis.call('ZREM', key('delayed'), id)
      count_waiting(id, h[1], h[2], h[3], h[4], -1)
      finish(id, 'expired', now, EXPIRED_ERROR)
      table.insert(expired, id)
    end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', key('delayed'), '-inf', now,
                                 'LIMIT', 0, REAP_LIMIT)) do
    redis.call('ZREM', key('delayed'), id)
    local h = redis.call('HMGET', req(id), 'status', 'provider', 'score')
    if h[1] == 'queued' then
      redis.call('HDEL', req(id), 'not_before')
      make_ready(id, h[2], h[3])
      promoted = promoted + 1
    end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', key('retention'), '-inf', now,
                                 'LIMIT', 0, REAP_LIMIT)) do
    if redis.call('ZSCORE', key('unannounced'), id) then
      redis.call('ZADD', key('retention'), s(now + RETENTION_MS), id)  -- its result is owed
    else
      redis.call('ZREM', key('retention'), id)
      redis.call('DEL', req(id))
      forget_ended(id)
    end
  end
  return {expired, failed, lease_expiries, promoted}
end
