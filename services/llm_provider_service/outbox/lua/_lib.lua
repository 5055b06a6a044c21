-- Shared prelude of the outbox scripts. ARGV[1] the key prefix with its hash tag (every key
-- shares it, as the queue's do), ARGV[2] ms added to server TIME (0 but in tests).
-- Script-specific arguments start at ARGV[3]. Server TIME is the only clock.
local P = ARGV[1]
local OFFSET = tonumber(ARGV[2])

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + OFFSET
end

local function s(n) return string.format('%d', tonumber(n)) end
local DUE = P .. ':outbox:due'  -- pending ids, score = when due (ms)
local CHANNELS = {'kafka', 'webhook'}
-- Pending ids per channel, score = when added (ms): sizes and ages in O(1) for metrics.
local function created(channel) return P .. ':outbox:created:' .. channel end
local function d(id) return P .. ':outbox:d:' .. id end
local function by_request(request_id) return P .. ':outbox:req:' .. request_id end

local function forget_pending(id)
  redis.call('ZREM', DUE, id)
  for _, channel in ipairs(CHANNELS) do redis.call('ZREM', created(channel), id) end
end

-- Ended deliveries, score = when they are forgotten (ms); purged by `claim`, on this clock.
local FORGET = P .. ':outbox:forget'

-- A delivery leaves the pending sets for good; its hash (without the payload) and the
-- request's index of it stay readable until `forget_at`.
local function finish(id, state, forget_at)
  forget_pending(id)
  redis.call('HSET', d(id), 'state', state)
  redis.call('HDEL', d(id), 'payload', 'next_attempt_at')
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
