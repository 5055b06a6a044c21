"""The LLM Provider Service: fresh LLM judgements, with a durable queue for provider outages."""
