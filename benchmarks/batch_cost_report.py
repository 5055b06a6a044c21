"""What `benchmarks/batch_cost.py` measured, its table, and its page
(`documentation/benchmarks-batch.md`)."""

from __future__ import annotations

import argparse
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.llm_provider_service.settings import Settings

_METRICS = (
    "llm_provider_batch_api_jobs_total",
    "llm_provider_batch_items_total",
    "llm_provider_batch_savings_dollars_total",
    "llm_provider_batch_api_items_per_job_sum",
    "llm_provider_batch_api_items_per_job_count",
)

_NAMES = {"anthropic": "Anthropic", "openai": "OpenAI"}


@dataclass
class Lane:
    """One lane's run: what came back and what it cost (`cost_estimate` summed)."""

    name: str
    sent: int
    completed: int
    cost: float
    prompt_tokens: int
    completion_tokens: int
    served_via: dict[str, int]
    statuses: dict[int, int]
    seconds: float
    unfinished: int = 0
    batches: list[int] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        name: str,
        sent: int,
        results: list[dict[str, Any]],
        statuses: dict[int, int],
        seconds: float,
    ) -> Lane:
        served: dict[str, int] = {}
        for result in results:
            served[result["served_via"]] = served.get(result["served_via"], 0) + 1
        usage = [r["token_usage"] for r in results]
        return cls(
            name,
            sent,
            len(results),
            sum(r["cost_estimate"] or 0.0 for r in results),
            sum(u["prompt_tokens"] for u in usage),
            sum(u["completion_tokens"] for u in usage),
            served,
            statuses,
            seconds,
        )

    @property
    def per_1000(self) -> float:
        return self.cost / self.completed * 1000 if self.completed else float("nan")


@dataclass
class VendorRun:
    """One vendor's two lanes, and the batch metrics the service counted for it."""

    vendor: str
    model: str
    realtime: Lane
    batch: Lane
    metrics: dict[str, dict[str, float]]

    @property
    def savings_metric(self) -> float:
        """`llm_provider_batch_savings_dollars_total`: the realtime price of the batch lane's
        usage minus what the batch lane cost."""
        return sum(self.metrics.get("llm_provider_batch_savings_dollars_total", {}).values())

    @property
    def batch_at_realtime_price(self) -> float:
        return self.batch.cost + self.savings_metric

    @property
    def saved_per_1000(self) -> float:
        return self.realtime.per_1000 - self.batch.per_1000

    def as_json(self) -> dict[str, Any]:
        found = asdict(self)
        found["derived"] = {
            "realtime_per_1000": self.realtime.per_1000,
            "batch_per_1000": self.batch.per_1000,
            "saved_per_1000": self.saved_per_1000,
            "saved_share": self.saved_per_1000 / self.realtime.per_1000,
            "savings_metric": self.savings_metric,
            "batch_at_realtime_price": self.batch_at_realtime_price,
        }
        return found


@dataclass
class BatchCostReport:
    when: str
    machine: str
    settings: dict[str, Any]
    runs: list[VendorRun]

    @classmethod
    def of(cls, settings: Settings, runs: list[VendorRun]) -> BatchCostReport:
        used = {
            "BATCH_MAX_WAIT_SECONDS": settings.batch.max_wait_seconds,
            "BATCH_POLL_SECONDS": settings.batch.poll_seconds,
            "BATCH_MAX_ITEMS": settings.batch.max_items,
            "BATCH_FLEX_ENABLED": settings.batch.flex_enabled,
        }
        machine = (
            f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
        )
        when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        return cls(when, machine, used, runs)

    def as_json(self) -> dict[str, Any]:
        return {
            "when": self.when,
            "machine": self.machine,
            "settings": self.settings,
            "vendors": {run.vendor: run.as_json() for run in self.runs},
        }


def metric_sums(text: str, provider: str) -> dict[str, dict[str, float]]:
    """The batch lane's counters of `provider` from a `/metrics` page, each summed by its
    `status` or `outcome` label (or under "all")."""
    found: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        if name not in _METRICS:
            continue
        key, found_provider = "all", None
        for label in labels.rstrip("}").split(","):
            label_name, _, label_value = label.partition("=")
            if label_name in ("status", "outcome"):
                key = label_value.strip('"')
            elif label_name == "provider":
                found_provider = label_value.strip('"')
        if found_provider != provider:
            continue
        bucket = found.setdefault(name, {})
        bucket[key] = bucket.get(key, 0.0) + float(value)
    return found


def _rows(report: VendorRun) -> list[str]:
    rt, b = report.realtime, report.batch
    sizes = ", ".join(map(str, b.batches)) or "none"
    share = report.saved_per_1000 / rt.per_1000 if rt.per_1000 else float("nan")
    return [
        "| | realtime | batch |",
        "|---|---|---|",
        f"| judgements completed | {rt.completed:,} of {rt.sent:,} "
        f"| {b.completed:,} of {b.sent:,} |",
        f"| served_via | {_counts(rt.served_via)} | {_counts(b.served_via)} |",
        f"| tokens in / out | {rt.prompt_tokens:,} / {rt.completion_tokens:,} "
        f"| {b.prompt_tokens:,} / {b.completion_tokens:,} |",
        f"| total cost (sum of cost_estimate) | ${rt.cost:.4f} | ${b.cost:.4f} |",
        f"| cost per 1,000 judgements | ${rt.per_1000:.4f} | ${b.per_1000:.4f} |",
        f"| saved per 1,000 | | ${report.saved_per_1000:.4f} ({share:.1%}) |",
        f"| provider batches (items each) | none | {len(b.batches)} ({sizes}) |",
        f"| wall time to complete all | {rt.seconds:.1f} s | {b.seconds:.1f} s |",
    ]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v:,}" for k, v in sorted(counts.items())) or "none"


def _metric_rows(report: VendorRun) -> list[str]:
    m = report.metrics
    jobs_by_status = {k: int(v) for k, v in m.get("llm_provider_batch_api_jobs_total", {}).items()}
    items = {k: int(v) for k, v in m.get("llm_provider_batch_items_total", {}).items()}
    per_job = m.get("llm_provider_batch_api_items_per_job_sum", {}).get("all", 0.0)
    jobs = m.get("llm_provider_batch_api_items_per_job_count", {}).get("all", 0.0)
    return [
        "| metric (from the service's `/metrics`) | value |",
        "|---|---|",
        f"| `llm_provider_batch_api_jobs_total` by status | {_counts(jobs_by_status)} |",
        f"| `llm_provider_batch_items_total` by outcome | {_counts(items)} |",
        f"| `llm_provider_batch_api_items_per_job`: jobs, items | {int(jobs)}, {int(per_job)} |",
        f"| `llm_provider_batch_savings_dollars_total` | ${report.savings_metric:.4f} |",
        f"| batch cost + savings metric (= the batch lane's usage at realtime price) "
        f"| ${report.batch_at_realtime_price:.4f} |",
    ]


def _run_section(run: VendorRun) -> list[str]:
    return [
        f"### {_NAMES.get(run.vendor, run.vendor)} (`{run.model}`)",
        "",
        *_rows(run),
        "",
        "Cross-check with the service's own metrics for this provider:",
        "",
        *_metric_rows(run),
        "",
    ]


def table(report: BatchCostReport) -> str:
    return "\n".join(line for run in report.runs for line in _run_section(run))


def render(report: BatchCostReport, arguments: argparse.Namespace) -> str:
    settings = ", ".join(f"`{k}={v}`" for k, v in report.settings.items())
    vendors = ", ".join(f"{run.vendor} `{run.model}`" for run in report.runs)
    return "\n".join(
        [
            "# Benchmarks: the cost of judgements, realtime vs batch",
            "",
            "Written by `pdm run bench-batch --write-docs` (benchmarks/batch_cost.py); do not "
            "edit by hand.",
            "",
            f"- when: {report.when}; machine: {report.machine}",
            f"- {arguments.comparisons:,} comparisons per lane and vendor ({vendors}), the "
            "service in process (the app with its container, worker and batch engine), its "
            "adapters on the real vendor SDKs against the tests' fake upstream on loopback "
            "(`tests/support/fake_vendors`, as a process of its own), which speaks the "
            "vendors' realtime and Batch API wire formats.",
            '- realtime: `processing_mode: "immediate"`, 16 concurrent clients; batch: '
            '`processing_mode: "batch"` from 16 clients too, each status polled until '
            "completed; the fake ends each provider batch as soon as it is submitted.",
            f"- settings: {settings}; everything else the testing defaults.",
            "",
            *(line for run in report.runs for line in _run_section(run)),
            "## What the numbers say",
            "",
            "- The cost is the service's own `cost_estimate` of each result: the token usage the "
            "vendor reported x the built-in price table (`providers/price_list.py`) x the "
            "lane's factor (`LANE_PRICE_FACTORS`, 0.5 for both vendors' Batch APIs). With the "
            "same usage per judgement, a batch judgement costs half a realtime one; the "
            "savings metric is the same difference counted inside the service.",
            "- The realtime and batch lanes' usage differs a little (the fake's answers vary "
            "from call to call), so their costs per 1,000 differ by slightly more or less "
            "than half; the savings metric prices the batch lane's own usage both ways.",
            "- Every batch request was completed exactly once from its own row, as a "
            'realtime result is (`served_via: "batch"`), in as many provider batches as '
            "the table shows (filled for up to `BATCH_MAX_WAIT_SECONDS`).",
            "",
            "## What they do not say",
            "",
            "- The token usage is the fake's, not a real model's: the money per 1,000 "
            "judgements scales with your prompts and answers (the ratio does not).",
            "- The batch lane's wall time here is the service's own (fill, create, poll, "
            "ingest) against a vendor that ends batches at once. A real Batch API takes "
            "minutes to hours (up to 24 h); plan with the vendor's window, not this figure.",
            "- Nothing here measures the vendors' real prices over time: the price table is "
            'compiled from their pages (documentation/providers.md, "Price list").',
            "",
            "## Reproduce",
            "",
            "    pdm run bench-batch                   # 1,000 per lane, to benchmarks/results/",
            "    pdm run bench-batch --comparisons 100 # quicker",
            "    pdm run bench-batch --write-docs      # this page",
            "",
        ]
    )
