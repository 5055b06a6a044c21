"""Metrics of several serve processes, through prometheus-client's multiprocess mode: each
process writes its values to memory-mapped files in one directory, and a scrape of any process
reads all of them, so `/metrics` is the service's, not one random process's.

prometheus-client picks where values live once, at import, from `PROMETHEUS_MULTIPROC_DIR`;
only `ServeProcesses` sets it, and only for the processes it spawns. Everything else (one
serve process, the standalone worker, the tests) keeps plain in-memory values, unchanged.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

# prometheus-client's own variable: its contract, not a setting of the service.
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def in_multiprocess_mode() -> bool:
    """Whether this process's metric values live in the shared files (prometheus-client
    decided so at import because `ServeProcesses` spawned it with the directory set)."""
    return values.ValueClass is not values.MutexValue


class ProcessesCollector(Collector):
    """Every process's metrics merged from the files, except the families named `local`,
    which come from this process's `registry` alone: the gauges this process has just read
    from the shared store at scrape time (summing or picking among the other processes'
    older readings could only be worse), the build it runs, and the `process_*` and
    `python_info` collectors, which exist in memory only."""

    def __init__(self, registry: CollectorRegistry, local: frozenset[str]) -> None:
        self._registry = registry
        self._local = local
        # It reads PROMETHEUS_MULTIPROC_DIR; prometheus-client leaves it unannotated.
        self._merged = MultiProcessCollector(None)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        merged = {
            m.name: m
            for m in self._merged.collect()  # type: ignore[no-untyped-call]
            if m.name not in self._local
        }
        for family in self._registry.collect():
            # A family no process has a value for yet comes out as it does with one process:
            # its HELP and TYPE, no samples.
            if family.name not in merged:
                yield family
        yield from merged.values()


class MetricFiles:
    """The directory of the serve processes' metric files, private to one `ServeProcesses`:
    created empty before the first process starts, removed when the parent exits, so no
    counts of an earlier run are ever added to this one's."""

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="llm-provider-metrics-")

    @contextlib.contextmanager
    def exported(self) -> Iterator[None]:
        """The directory in `PROMETHEUS_MULTIPROC_DIR` while the children are spawned (a
        spawned process starts with the parent's environment of that moment), and the
        parent's environment as it was afterwards."""
        before = os.environ.get(MULTIPROC_DIR_VARIABLE)
        os.environ[MULTIPROC_DIR_VARIABLE] = self.path
        try:
            yield
        finally:
            if before is None:
                del os.environ[MULTIPROC_DIR_VARIABLE]
            else:
                os.environ[MULTIPROC_DIR_VARIABLE] = before

    def mark_dead(self, pid: int) -> None:
        """Drop the `live*` gauges of a process that ended (its counters and histograms stay
        in the sums: they were counted, and counters never go back)."""
        mark_process_dead(pid, self.path)  # type: ignore[no-untyped-call]

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
