-- Reap on its own, for workers that claim nothing (every breaker open): expiries and stale
-- leases must be handled even while idle. Returns the reap findings.
return reap(now_ms())
