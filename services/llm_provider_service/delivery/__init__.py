"""Delivery of result events to callers: webhooks (callback_url)."""
