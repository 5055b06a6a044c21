"""Benchmark of result delivery: the durable Redis outbox and the relay to Kafka and webhooks.

Starts a private redis-server (AOF on, `appendfsync everysec` as in docker-compose.yml, or
`--fsync always`) and a private Tansu broker (Kafka-compatible), and drives the service's own
`RedisRequestQueue`, `RedisResultOutbox`, `KafkaEventPublisher`, `WebhookSender` and
`ResultRelay` in this process, along the realistic path: requests end in the queue (enqueue,
claim, complete), the relay announces them into the outbox and delivers the outbox. Every
scenario checks by consuming the topic (and the webhook receiver's records) that every result
arrived; a lost result makes the run exit non-zero. Writes
`documentation/benchmarks-result-delivery.md`. This module runs it; its parts are
`delivery_meter.py`, `delivery_harness.py`, `delivery_scenarios.py` and `delivery_report.py`.

    pdm run bench-result-delivery                  # defaults: 2,000 results per scenario
    pdm run bench-result-delivery --results 500    # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from benchmarks.delivery_meter import RELAY_LOG, Meter, say, tansu_version
from benchmarks.delivery_report import Run, report
from benchmarks.delivery_scenarios import BATCH_SIZES, memory, outage, steady, webhooks
from devtools.kafka_broker import TansuBroker
from devtools.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "documentation" / "benchmarks-result-delivery.md"


async def main(n: int, repeats: int, fsync: str) -> int:
    started = time.perf_counter()
    logging.basicConfig(level=logging.ERROR, format="  log %(levelname)s %(name)s: %(message)s")
    # aiokafka logs every refused connection during the intended outage.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    RELAY_LOG.install()
    with tempfile.TemporaryDirectory(prefix="bench-result-delivery-") as tmp:
        server = RedisServer(Path(tmp) / "redis", fsync=fsync)
        broker = TansuBroker(Path(tmp) / "tansu")
        run = Run(n, repeats, fsync, server.version(), tansu_version(broker), os.getloadavg())
        say(f"redis-server {run.redis_version} (appendfsync {fsync}), Tansu {run.tansu_version}")
        server.start()
        broker.start()
        meter = Meter(server, broker)
        redis = Redis.from_url(
            server.url, decode_responses=True, socket_connect_timeout=5, socket_timeout=10
        )
        try:
            for repeat in range(1, repeats + 1):
                for batch_size in BATCH_SIZES:
                    outcome = await steady(redis, broker, meter, n, batch_size, repeat)
                    run.steady.append(outcome)
            run.outage = await outage(redis, broker, meter, n)
            run.webhooks = await webhooks(redis, broker, meter, max(1, n // 4))
            run.memory = await memory(redis, broker, n)
        finally:
            await redis.aclose()
            broker.stop()
            server.stop()
    run.seconds = time.perf_counter() - started
    REPORT.write_text(report(run))
    say(f"report written to {REPORT} ({run.seconds:.0f} s in all)")
    if run.lost:
        say(f"RESULTS LOST OR NOT DELIVERED: {', '.join(run.lost)}")
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=2000, help="N (default 2,000)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of scenario 1 per batch size (default 3)"
    )
    parser.add_argument(
        "--fsync",
        choices=("everysec", "always"),
        default="everysec",
        help="redis-server appendfsync (default everysec, as in docker-compose.yml)",
    )
    options = parser.parse_args()
    if options.results < 1 or options.repeats < 1:
        parser.error("--results and --repeats must be at least 1")
    sys.exit(asyncio.run(main(options.results, options.repeats, options.fsync)))
