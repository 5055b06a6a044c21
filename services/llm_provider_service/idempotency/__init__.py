"""Exactly-once requests: an Idempotency-Key maps to one request, its queue_id or its result."""
