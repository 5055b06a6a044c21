"""Provider adapters against the fake upstream: real SDK clients, real HTTP on loopback."""
