-- KEYS: the key, the reservation's fence. ARGV: the entry, the hold in ms.
-- A withdrawn reservation (its fence set by `release`) is never written, however late its
-- command reaches Redis; else SET NX, and the entry already there when it is taken.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {'withdrawn'}
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'reserved'}
end
return {'taken', redis.call('GET', KEYS[1])}
