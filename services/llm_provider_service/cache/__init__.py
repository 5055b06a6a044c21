"""Judgement sharing that callers opt into: in-flight deduplication and the development cache."""
