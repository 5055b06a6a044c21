"""`FakeUpstream` as a process of its own, for what may not import test code (benchmarks).

    python -m tests.support.fake_vendors [--port N] [--seed S] [--end-batches]

Prints `listening <port>` once it serves. With `--end-batches` every Anthropic Message Batch
ends (each entry `succeeded`) as soon as it is submitted, and a line `ended <batch id>
<entries>` is printed for each. Runs until stdin closes (the parent went away) or SIGTERM.
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
    """Ends each in-progress Anthropic batch and prints its size, until `stop` is set."""
    batches = fake.anthropic_batches
    while not stop.wait(END_EVERY_SECONDS):
        for batch_id in batches.ids:
            try:
                batch = batches.batch(batch_id)
            except KeyError:  # deleted meanwhile
                continue
            if batch.status == "in_progress":
                batches.end(batch_id)
                print(f"ended {batch_id} {len(batch.requests)}", flush=True)


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
