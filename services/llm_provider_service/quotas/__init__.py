"""The package of per-caller request-rate quotas."""
