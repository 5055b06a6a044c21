-- KEYS: the key. ARGV: the finished entry, its life in ms, its `"request_id":"…"` in JSON.
-- Writes only over nothing (a lapsed reservation) or over this request's own entry: a late
-- save, retried while Redis was away, never replaces a reservation another request took since.
local current = redis.call('GET', KEYS[1])
if current and not string.find(current, ARGV[3], 1, true) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
