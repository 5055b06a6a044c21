-- Reap on its own, for workers that claim nothing (every breaker open): expiries and stale
-- leases must be handled even while idle. Also takes over what the reaps inside claims (of
-- any worker) handed on in `reaped:*`, up to 10000 ids per list (the rest the next time), so
-- each finding is reported once, by whichever worker reaps next. Returns the reap findings.
local found = reap(now_ms())
for i, name in ipairs({'reaped:expired', 'reaped:failed'}) do
  local ids = redis.call('LPOP', key(name), 10000)
  if ids then
    for _, id in ipairs(ids) do table.insert(found[i], id) end
  end
end
local counts = redis.call('HMGET', key('reaped:counts'), 'lease_expiries', 'promoted')
redis.call('DEL', key('reaped:counts'))
found[3] = found[3] + (tonumber(counts[1]) or 0)
found[4] = found[4] + (tonumber(counts[2]) or 0)
return found
