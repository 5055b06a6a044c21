"""`FakeUpstream` as a process of its own, for what may not import test code (benchmarks).

    python -m tests.support.fake_vendors [--port N] [--seed S] [--end-batches]

Prints `listening <port>` once it serves. With `--end-batches` every Anthropic Message Batch
and OpenAI batch ends (each entry `succeeded`) as soon as it is submitted, and a line
`ended <vendor> <batch id> <entries>` is printed for each. Runs until stdin closes (the
parent went away) or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import IO

from tests.support.fake_vendors.server import FakeUpstream

END_EVERY_SECONDS = 0.01


def end_submitted_batches(fake: FakeUpstream, stop: threading.Event) -> None:
    """Ends each Anthropic and OpenAI batch just submitted, every entry succeeded, and prints
    its vendor and size, until `stop` is set."""
    anthropic, openai = fake.anthropic_batches, fake.openai_batches
    while not stop.wait(END_EVERY_SECONDS):
        for batch_id in anthropic.ids:
            try:
                batch = anthropic.batch(batch_id)
            except KeyError:  # deleted meanwhile
                continue
            if batch.status == "in_progress":
                anthropic.end(batch_id)
                print(f"ended anthropic {batch_id} {len(batch.requests)}", flush=True)
        for batch_id in list(openai.batches.copy()):
            if openai.batch(batch_id)["status"] == "validating":
                openai.end(batch_id)
                total = openai.batch(batch_id)["request_counts"]["total"]
                print(f"ended openai {batch_id} {total}", flush=True)


def stop_at_end_of(stream: IO[str], stop: threading.Event) -> None:
    stream.read()
    stop.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--end-batches", action="store_true")
    arguments = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=stop_at_end_of, args=(sys.stdin, stop), daemon=True).start()
    with FakeUpstream(seed=arguments.seed, port=arguments.port) as fake:
        print(f"listening {fake.port}", flush=True)
        if arguments.end_batches:
            end_submitted_batches(fake, stop)
        stop.wait()


if __name__ == "__main__":
    main()
