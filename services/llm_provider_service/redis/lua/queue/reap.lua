-- Reap on its own, for workers that claim nothing (every breaker open): expiries and stale
-- leases must be handled even while idle. Also takes over what the reaps inside claims (of
-- any worker) handed on in `reaped:*`, up to 10000 ids per list (the rest the next time), so
-- each finding is reported once, by whichever worker reaps next. Returns the reap findings.
-- No keys beyond the shared ones; the reaped ids' records are learned keys (see _lib.lua).
local found = reap(now_ms())
for i, list in ipairs({REAPED_EXPIRED, REAPED_FAILED}) do
  local ids = redis.call('LPOP', list, 10000)
  if ids then
    for _, id in ipairs(ids) do table.insert(found[i], id) end
  end
end
local counts = redis.call('HMGET', REAPED_COUNTS, 'lease_expiries', 'promoted')
redis.call('DEL', REAPED_COUNTS)
found[3] = found[3] + (tonumber(counts[1]) or 0)
found[4] = found[4] + (tonumber(counts[2]) or 0)
return found
