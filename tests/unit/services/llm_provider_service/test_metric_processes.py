"""Metrics of several serve processes: what a scrape of one reports for all, and the
directory the parent keeps their files in."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families

from common_core.enums import CircuitBreakerState, LLMProviderType
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.metrics.processes import (
    MULTIPROC_DIR_VARIABLE,
    MetricFiles,
    in_multiprocess_mode,
)
from services.llm_provider_service.models import QueueStats


@pytest.fixture
def files(monkeypatch: pytest.MonkeyPatch) -> Iterator[MetricFiles]:
    files = MetricFiles()
    monkeypatch.setenv(MULTIPROC_DIR_VARIABLE, files.path)
    yield files
    files.remove()


@pytest.fixture
def process(monkeypatch: pytest.MonkeyPatch, files: MetricFiles) -> Callable[[int], ServiceMetrics]:
    """`process(pid)`: the metrics of a serve process with that pid, as prometheus-client
    builds them in a process spawned with PROMETHEUS_MULTIPROC_DIR set."""

    def build(pid: int) -> ServiceMetrics:
        monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: pid))
        return ServiceMetrics()

    return build


def _samples(metrics: ServiceMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _queue_stats(depth: int) -> QueueStats:
    return QueueStats(depth={LLMProviderType.MOCK: depth}, depth_by_priority={5: depth})


def test_a_scrape_of_either_process_reports_both(
    process: Callable[[int], ServiceMetrics], files: MetricFiles
) -> None:
    first, second = process(1001), process(1002)
    assert in_multiprocess_mode()
    first.record_http_request("POST", "/api/v1/comparison", 200, 0.1, 0.001)
    second.record_http_request("POST", "/api/v1/comparison", 200, 0.2, 0.002)
    second.record_http_request("POST", "/api/v1/comparison", 200, 0.2, 0.002)
    first.set_breaker_state(LLMProviderType.OPENAI, CircuitBreakerState.OPEN)
    second.set_breaker_state(LLMProviderType.OPENAI, CircuitBreakerState.HALF_OPEN)
    first.outbox_unsaved.set(2)
    second.outbox_unsaved.set(3)
    # The queue gauges each process read at its own scrape: the older reading is stale.
    first.observe_queue(_queue_stats(9))
    second.observe_queue(_queue_stats(4))

    for scraped in (first, second):
        samples = _samples(scraped)
        requests = (("method", "POST"), ("route", "/api/v1/comparison"), ("status", "200"))
        assert samples["llm_provider_http_requests_total", requests] == 3
        latency = (("method", "POST"), ("route", "/api/v1/comparison"))
        assert samples["llm_provider_http_request_duration_seconds_count", latency] == 3
        breaker = "llm_provider_circuit_breaker_state", (("provider", "openai"),)
        assert samples[breaker] == 2  # the worst: open in one, half-open in the other
        assert samples["llm_provider_outbox_unsaved", ()] == 5  # each holds its own
        assert samples["llm_provider_build_info", _build_labels(samples)] == 1  # once

    assert _samples(first)["llm_provider_queue_depth", (("provider", "mock"),)] == 9
    assert _samples(second)["llm_provider_queue_depth", (("provider", "mock"),)] == 4
    assert not any("pid" in dict(labels) for _, labels in _samples(first))
    first.observe_queue(QueueStats())  # priority 5 emptied: its series goes, as with one
    assert not any(name == "llm_provider_queue_depth_by_priority" for name, _ in _samples(first))

    files.mark_dead(1001)  # the first process ended
    samples = _samples(second)
    assert samples["llm_provider_circuit_breaker_state", (("provider", "openai"),)] == 1
    assert samples["llm_provider_outbox_unsaved", ()] == 3
    requests = (("method", "POST"), ("route", "/api/v1/comparison"), ("status", "200"))
    assert samples["llm_provider_http_requests_total", requests] == 3  # counted is counted


def _build_labels(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float],
) -> tuple[tuple[str, str], ...]:
    [labels] = [labels for name, labels in samples if name == "llm_provider_build_info"]
    return labels


def test_one_process_keeps_its_values_in_memory() -> None:
    assert not in_multiprocess_mode()  # no test process is spawned with the directory set


def test_the_directory_is_new_exported_only_while_spawning_and_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROC_DIR_VARIABLE, raising=False)
    files = MetricFiles()
    assert os.listdir(files.path) == []
    with files.exported():
        assert os.environ[MULTIPROC_DIR_VARIABLE] == files.path
    assert MULTIPROC_DIR_VARIABLE not in os.environ
    files.remove()
    assert not Path(files.path).exists()
