"""Shared enums, event envelope and API models used by the LLM Provider Service and its clients."""
