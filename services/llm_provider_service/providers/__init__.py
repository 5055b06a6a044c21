"""LLM provider adapters, one module per vendor."""
