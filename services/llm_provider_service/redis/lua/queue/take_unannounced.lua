-- Take ended requests whose result event is not yet in the outbox, oldest first, hiding
-- each from other relays for a while: a relay that dies before `mark_announced` leaves its
-- ids to be taken again once that time is up (at-least-once; the outbox ignores repeats).
-- The taken ids' records are learned keys (the exception in _lib.lua).
-- ARGV[7] limit, [8] hide ms. Returns the ids.
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', UNANNOUNCED, '-inf', now,
                       'LIMIT', 0, tonumber(ARGV[7]))
for _, id in ipairs(ids) do
  if redis.call('EXISTS', req(id)) == 1 then
    redis.call('ZADD', UNANNOUNCED, s(now + tonumber(ARGV[8])), id)
  else
    redis.call('ZREM', UNANNOUNCED, id)
  end
end
return ids
