-- One request against a caller's rate, by the generic cell rate algorithm (GCRA), atomically:
-- the key holds the caller's theoretical arrival time (TAT) in ms. A request is allowed when
-- it comes no earlier than TAT minus the burst, which lets a whole minute's allowance go at
-- once and then one request per interval; a refused request changes nothing.
-- Redis TIME is the clock, so every replica shares one rate whatever its own clock says.
-- KEYS[1]: the caller's rate key
-- ARGV[1]: the interval in ms (60000 / requests per minute), ARGV[2]: the burst (requests
-- per minute), ARGV[3]: ms added to TIME (0 in the service; tests move time with it).
-- Returns 0 when the request is taken, else the ms until one would be.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat - (burst - 1) * interval
if now < allow_at then return allow_at - now end
local new_tat = tat + interval
-- The key outlives the TAT by a second, then is gone: an idle caller keeps no state.
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', new_tat - now + 1000))
return 0
