-- Shared prelude of the drain-rate scripts. KEYS[1] the provider's completions
-- (`drained:<provider>`). ARGV: [1] ms added to TIME, [2] window ms; recording adds [3] the
-- queue id and [4] how many to keep. Redis TIME is the clock, as for the queue, so workers'
-- clocks do not matter. Completions older than the window are dropped first.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('(%d', now - window))
