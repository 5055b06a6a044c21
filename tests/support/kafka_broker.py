"""A private Tansu broker per test session: see `devtools.kafka_broker`."""

from devtools.kafka_broker import TansuBroker, consume, create_topics

__all__ = ["TansuBroker", "consume", "create_topics"]
