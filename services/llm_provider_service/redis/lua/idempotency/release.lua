-- KEYS: the key, the reservation's fence. ARGV: the entry, the fence's life in ms.
-- Fences the reservation first, then deletes the key only if it still holds this very
-- reservation: a newer one, or a finished entry, is left alone.
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
