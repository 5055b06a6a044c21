"""`performance.md`: the gateway comparison and the CJ load test as one Markdown page with
PNG plots, rendered from the runs' JSON (so either part can be rerun alone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.gateway.summary import TARGETS

LATENCY_PNG = "performance-latency.png"
THROUGHPUT_PNG = "performance-throughput.png"
CJ_PNG = "performance-cj-load.png"


def _ms(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _verdict(met: bool | None) -> str:
    return {True: "**met**", False: "**missed**", None: "not measured"}[met]


def gateway_section(report: dict[str, Any]) -> list[str]:
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = [
        "## The service beside direct SDK calls and the LiteLLM proxy",
        "",
        f"- when: {m['when']}; machine: {m['cpu']}, {m['cores']} cores, {m['system']}; "
        f"load average at the start {m['load_average']}",
        f"- versions: {versions}",
        f"- a fake OpenAI upstream (its own process, raw asyncio) answering every chat "
        f"completion after {report['upstream_latency_ms']:g} ms; {report['requests_per_level']} "
        "requests per level, closed loop: `c` callers each send the next request when the "
        "last is answered. The load generator runs on the same cores.",
        "- **direct**: the openai SDK's `chat.completions.create` with the json_schema "
        "`response_format` the service sends; **service**: `POST /api/v1/comparison` "
        "(provider openai, `processing_mode` immediate) to `serve`, one process, "
        "`OPENAI_MAX_CONCURRENCY` 1000, `LOG_LEVEL` WARNING (no access or lifecycle log "
        "lines: at INFO each request writes four, about 0.2 ms of CPU more, see "
        "benchmarks/profiles/README.md); **litellm**: the proxy, one worker, called with the "
        "same SDK call as direct.",
        "- overhead: the target's percentile minus direct's at the same level. RSS: the "
        "target's process group (VmRSS) after its last level.",
        *[f"- note: {note}" for note in report["notes"]],
        "",
        "| target | c | req/s | p50 ms | p95 ms | p99 ms | overhead p50 | p95 | p99 | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in TARGETS:
        entry = report["targets"].get(name)
        for row in entry["levels"] if entry else []:
            errors = ", ".join(f"{k} x{v}" for k, v in row["error_kinds"].items()) or "0"
            lines.append(
                f"| {name} | {row['concurrency']} | {row['throughput']:,.0f} "
                f"| {_ms(row['p50_ms'])} | {_ms(row['p95_ms'])} | {_ms(row['p99_ms'])} "
                f"| {_ms(row['overhead_p50_ms'], True)} | {_ms(row['overhead_p95_ms'], True)} "
                f"| {_ms(row['overhead_p99_ms'], True)} | {errors} |"
            )
    rss = [
        f"{name} {entry['rss_mb']:.0f} MB"
        for name, entry in report["targets"].items()
        if entry.get("rss_mb") is not None
    ]
    lines += ["", f"RSS after the last level: {', '.join(rss) or '—'}.", ""]
    lines += ["| target of issue 15 | measured | verdict |", "|---|---|---|"]
    lines += [
        f"| {c['target']} | {c['measured']} | {_verdict(c['met'])} |" for c in report["checks"]
    ]
    lines += ["", f"![latency by concurrency](images/{LATENCY_PNG})", ""]
    lines += [f"![throughput by concurrency](images/{THROUGHPUT_PNG})", ""]
    return lines


def cj_section(report: dict[str, Any]) -> list[str]:
    r = report
    lat, queued = r["latency_ms"], r["queued_latency_ms"]
    ended = ", ".join(f"{k} x{v}" for k, v in r["ended_without_judgement"].items()) or "none"
    refused = ", ".join(f"{k} x{v}" for k, v in r["refused"].items()) or "none"
    verdict = (
        "**none lost, each judged exactly once**"
        if r["lost"] == 0 and r["judged_exactly_once"] == r["requests"]
        else "**missed: see the counts**"
    )
    return [
        "## Concurrent CJ assessments through a provider outage",
        "",
        f"- {r['sessions']} sessions x {r['comparisons_per_session']} comparisons = "
        f"{r['requests']} requests (`queue_if_unavailable`, an idempotency key each), "
        f"`serve` with the Redis queue (a private redis-server, AOF) and the mock provider "
        f"({r['mock_latency_ms']:g} ms); the first half sent with the provider up, then the mock "
        f"fails every call for {r['outage_seconds']:g} s while the second half is sent; queued "
        "requests are polled on `/api/v1/status/<queue_id>` (about once a second, so queued "
        "latencies are rounded up to the next poll).",
        "",
        "| requests | 200 at once | 202 queued | judged once | judged twice or more | lost "
        "| ended without a judgement | refused | drain after the outage | wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {r['requests']} | {r['answered_at_once']} | {r['queued']} "
        f"| {r['judged_exactly_once']} | {r['judged_more_than_once']} | {r['lost']} | {ended} "
        f"| {refused} | {r['drain_seconds_after_outage']:.1f} s | {r['wall_seconds']:.1f} s |",
        "",
        f"Result: {verdict} (duplicate request ids: {r['duplicate_request_ids']}; judgements "
        f"for comparisons never sent: {r['unexpected_judgements']}).",
        "",
        "| latency, ms | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|",
        f"| every request | {lat['p50']} | {lat['p95']} | {lat['p99']} | {lat['max']} |",
        f"| the queued ones | {queued['p50']} | {queued['p95']} | {queued['p99']} "
        f"| {queued['max']} |",
        "",
        f"![CJ load latencies](images/{CJ_PNG})",
        "",
    ]


def plot_gateway(report: dict[str, Any], images: Path) -> None:
    for png, key, label in (
        (LATENCY_PNG, "p50_ms", "p50 latency, ms"),
        (THROUGHPUT_PNG, "throughput", "requests/s"),
    ):
        figure, axes = plt.subplots(figsize=(6, 3.6))
        for name, entry in report["targets"].items():
            rows = [r for r in entry["levels"] if r[key] is not None]
            axes.plot([r["concurrency"] for r in rows], [r[key] for r in rows], "o-", label=name)
        axes.set_xscale("log")
        if key == "p50_ms":  # 20 ms at c=1 and seconds at c=200 on one axis
            axes.set_yscale("log")
        axes.set_xlabel("concurrent callers")
        axes.set_ylabel(label)
        axes.legend()
        axes.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(images / png, dpi=110)
        plt.close(figure)


def plot_cj(report: dict[str, Any], images: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 3.6))
    values = [v / 1000 for v in report["latencies_ms"]]
    axes.hist(values or [0.0], bins=50)
    axes.set_yscale("log")
    axes.set_xlabel("send to judgement, s")
    axes.set_ylabel("comparisons")
    figure.tight_layout()
    figure.savefig(images / CJ_PNG, dpi=110)
    plt.close(figure)


def render(
    gateway: dict[str, Any] | None, cj: dict[str, Any] | None, folder: Path, note: str | None = None
) -> Path:
    """Write `performance.md` and its plots into `folder` (images under `folder/images`)."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Performance: the service hop, side by side, and CJ sessions through an outage",
        "",
        "Written by `pdm run bench-performance` (benchmarks/performance.py); do not edit by "
        "hand. Every verdict below is computed from the run. Other processes on the machine "
        "add noise: compare the targets within one run, never across runs.",
        "",
        *([f"**{note}**", ""] if note else []),
    ]
    if gateway is not None:
        lines += gateway_section(gateway)
        plot_gateway(gateway, images)
    if cj is not None:
        lines += cj_section(cj)
        plot_cj(cj, images)
    page = folder / "performance.md"
    page.write_text("\n".join(lines))
    return page
