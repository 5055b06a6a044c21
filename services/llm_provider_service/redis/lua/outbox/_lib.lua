-- Shared prelude of the outbox scripts, prepended to each so that each is one atomic unit.
--
-- KEYS[1] `outbox:due`, KEYS[2] `outbox:forget`, KEYS[3] / KEYS[4] `outbox:created:kafka` /
-- `outbox:created:webhook` (`RedisResultOutbox` passes them, named by `RedisKeys`). A script
-- about one delivery it is told of receives that delivery's hash as KEYS[5] (and `add` the
-- request's index as KEYS[6]).
-- The one exception (for the Redis Cluster issue; documentation/queue.md, "Redis Cluster"):
-- the keys of a delivery the script learns only inside itself (an id read from `due` or
-- `forget`, and the request id read from its hash) are named from the prefix in ARGV[1] by
-- `d` and `by_request` below. Every key shares the prefix's hash tag, so one slot.
--
-- ARGV[1] the key prefix with its hash tag (only for those learned keys), ARGV[2] ms added
-- to server TIME (0 but in tests). Script-specific arguments start at ARGV[3]. Server TIME
-- is the only clock.
local DUE = KEYS[1]     -- pending ids, score = when due (ms)
local FORGET = KEYS[2]  -- ended deliveries, score = when they are forgotten (ms)
-- Pending ids per channel, score = when added (ms): sizes and ages in O(1) for metrics.
local CREATED = {kafka = KEYS[3], webhook = KEYS[4]}
local P = ARGV[1]
local OFFSET = tonumber(ARGV[2])

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + OFFSET
end

local function s(n) return string.format('%d', tonumber(n)) end

-- The learned keys (the exception above); their names are those of `RedisKeys`.
local function d(id) return P .. ':outbox:d:' .. id end
local function by_request(request_id) return P .. ':outbox:req:' .. request_id end

local function forget_pending(id)
  redis.call('ZREM', DUE, id)
  for _, created in pairs(CREATED) do redis.call('ZREM', created, id) end
end

-- A delivery (its hash: `delivery`) leaves the pending sets for good; its hash (without the
-- payload) and the request's index of it stay readable until `forget_at`; purged by `claim`.
local function finish(id, delivery, state, forget_at)
  forget_pending(id)
  redis.call('HSET', delivery, 'state', state)
  redis.call('HDEL', delivery, 'payload', 'next_attempt_at')
  redis.call('ZADD', FORGET, s(forget_at), id)
end

local function purge(now, limit)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', FORGET, '-inf', now, 'LIMIT', 0, limit)) do
    local request_id = redis.call('HGET', d(id), 'request_id')
    if request_id then redis.call('SREM', by_request(request_id), id) end
    redis.call('DEL', d(id))
    redis.call('ZREM', FORGET, id)
  end
end
