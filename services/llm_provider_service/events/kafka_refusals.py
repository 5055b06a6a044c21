"""How the Kafka publisher tells the broker's refusals from outages (`events/reasons.py`).

`REFUSALS` are the aiokafka errors that mean the broker (or the client) refused a record or
topic for good (`rejected`); `check_topic` proves a topic missing from the broker's metadata
answers (`unknown_topic`). Neither counts toward the breaker or costs the producer.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)

# The broker (or the client, before sending) refused this record or topic: the broker is up,
# so these neither count toward the breaker nor cost the producer.
REFUSALS: tuple[type[Exception], ...] = (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)
_METADATA_RETRY_SECONDS = 0.1


async def check_topic(producer: AIOKafkaProducer, topic: str, within: float) -> None:
    """Return once the producer's metadata has `topic`. Raise UnknownTopicOrPartitionError
    if the broker kept answering without it for `within` seconds (auto-creation off; an
    auto-created topic appears within a round or two), TopicAuthorizationFailedError if it
    says the topic is not ours. If the broker does not answer, return and let the send
    fail as an outage: only an answer can prove a topic missing."""
    client = producer.client
    if client.cluster.partitions_for_topic(topic) is not None:
        return
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + within
    await client.add_topic(topic)
    while True:
        answered = bool(await client.force_metadata_update())
        if client.cluster.partitions_for_topic(topic) is not None:
            return
        if topic in client.cluster.unauthorized_topics:
            raise TopicAuthorizationFailedError(topic)
        if not answered:
            return
        if loop.time() >= give_up_at:
            raise UnknownTopicOrPartitionError(topic)
        await asyncio.sleep(_METADATA_RETRY_SECONDS)
