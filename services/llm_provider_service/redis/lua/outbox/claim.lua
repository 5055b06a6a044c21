-- Claim due deliveries: each is hidden for the lease and its attempt counted, atomically,
-- so two relays never send the same delivery at the same time (a relay that dies mid-send
-- leaves it to be claimed again when the lease is up: at-least-once). The claimed ids'
-- hashes are learned keys (the exception in _lib.lua).
-- ARGV[3] limit, [4] lease ms. Returns {record, payload, attempts, last_error, next_at}...
local now = now_ms()
purge(now, 100)
local lease_ms = tonumber(ARGV[4])
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', DUE, '-inf', now, 'LIMIT', 0,
                               tonumber(ARGV[3]))) do
  local h = redis.call('HMGET', d(id), 'record', 'payload', 'state', 'last_error')
  if not h[1] or h[3] ~= 'pending' then
    forget_pending(id)
  else
    local attempts = redis.call('HINCRBY', d(id), 'attempts', 1)
    redis.call('ZADD', DUE, s(now + lease_ms), id)
    redis.call('HSET', d(id), 'next_attempt_at', s(now + lease_ms))
    table.insert(out, {h[1], h[2], attempts, h[4] or '', s(now + lease_ms)})
  end
end
return out
