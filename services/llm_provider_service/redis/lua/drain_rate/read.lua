-- The completions in the window: {n} with fewer than two, else {n, first ms, last ms}.
local n = redis.call('ZCARD', KEYS[1])
if n < 2 then return {n} end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
return {n, first[2], last[2]}
