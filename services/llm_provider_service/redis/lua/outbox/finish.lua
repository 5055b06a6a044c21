-- Delivered or given up. KEYS[5] the delivery's hash. ARGV[3] id, [4] 'delivered' or
-- 'failed', [5] retention ms, [6] error ('' for none).
local id, delivery = ARGV[3], KEYS[5]
if redis.call('HGET', delivery, 'state') ~= 'pending' then return 0 end
local now = now_ms()
if ARGV[4] == 'delivered' then redis.call('HSET', delivery, 'delivered_at', s(now)) end
if ARGV[6] ~= '' then redis.call('HSET', delivery, 'last_error', ARGV[6]) end
finish(id, delivery, ARGV[4], now + tonumber(ARGV[5]))
return 1
