"""Event publisher adapters."""
