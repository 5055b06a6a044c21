-- Delivered or given up. ARGV[3] id, [4] 'delivered' or 'failed', [5] retention ms,
-- [6] error ('' for none).
local id = ARGV[3]
if redis.call('HGET', d(id), 'state') ~= 'pending' then return 0 end
local now = now_ms()
if ARGV[4] == 'delivered' then redis.call('HSET', d(id), 'delivered_at', s(now)) end
if ARGV[6] ~= '' then redis.call('HSET', d(id), 'last_error', ARGV[6]) end
finish(id, ARGV[4], now + tonumber(ARGV[5]))
return 1
