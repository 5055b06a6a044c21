"""Demonstrations that run against the service: each proves a property end to end."""
