"""The side-by-side gateway benchmark: a fake OpenAI upstream, then direct SDK calls, the
service and the LiteLLM proxy against it (`python -m benchmarks.performance`)."""
