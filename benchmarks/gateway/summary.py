"""The gateway run as data: percentiles and overheads per target and level, and the issue's
targets computed from them (never written by hand)."""

from __future__ import annotations

from typing import Any

from benchmarks.gateway.load import LevelResult

TARGETS = ("direct", "service", "litellm")
OVERHEAD_P50_MAX_MS = 2.0
THROUGHPUT_RATIO_MIN = 10.0
RSS_MAX_MB = 200.0


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def level_row(result: LevelResult, direct: dict[str, Any] | None) -> dict[str, Any]:
    """One level's numbers; overheads are this target's percentile minus direct's."""
    row: dict[str, Any] = {
        "concurrency": result.concurrency,
        "answered": len(result.latencies_ms),
        "errors": result.error_count,
        "error_kinds": dict(result.errors),
        "seconds": round(result.seconds, 3),
        "throughput": round(result.throughput, 1),
    }
    for p in (50, 95, 99):
        value = percentile(result.latencies_ms, p)
        row[f"p{p}_ms"] = None if value is None else round(value, 2)
        base = direct.get(f"p{p}_ms") if direct else None
        row[f"overhead_p{p}_ms"] = None if value is None or base is None else round(value - base, 2)
    return row


def _level(report: dict[str, Any], target: str, concurrency: int) -> dict[str, Any] | None:
    entry = report["targets"].get(target)
    if entry is None:
        return None
    return next((r for r in entry["levels"] if r["concurrency"] == concurrency), None)


def _direct_ceiling(direct: dict[str, Any] | None, litellm: float) -> str:
    """A remark when direct SDK calls, with nothing between them and the upstream, stay below
    the throughput the target asks of the service: the load generator and the upstream share
    the machine's cores with the target, so this run could not have shown the target met."""
    if direct is None or direct["throughput"] >= THROUGHPUT_RATIO_MIN * litellm:
        return ""
    return (
        f"; direct SDK calls reach only {direct['throughput']:,.0f} req/s "
        f"({direct['throughput'] / litellm:.1f}x LiteLLM) on this machine"
    )


def checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue: what was measured, and met (True/False), or None when the run
    could not measure it (the level or LiteLLM missing)."""
    found: list[dict[str, Any]] = []
    one = _level(report, "service", 1)
    overhead = one["overhead_p50_ms"] if one else None
    found.append(
        {
            "target": f"c=1: service overhead p50 <= {OVERHEAD_P50_MAX_MS:g} ms over direct",
            "measured": "not measured" if overhead is None else f"{overhead:+.2f} ms",
            "met": None if overhead is None else overhead <= OVERHEAD_P50_MAX_MS,
        }
    )
    service, litellm = _level(report, "service", 50), _level(report, "litellm", 50)
    if service is None or litellm is None or not litellm["throughput"]:
        measured, met = "not measured (needs c=50 for the service and LiteLLM)", None
    else:
        ratio = service["throughput"] / litellm["throughput"]
        measured = (
            f"{ratio:.1f}x ({service['throughput']:,.0f} vs {litellm['throughput']:,.0f} "
            f"req/s), {service['errors']} errors"
        )
        met = ratio >= THROUGHPUT_RATIO_MIN and service["errors"] == 0
        measured += _direct_ceiling(_level(report, "direct", 50), litellm["throughput"])
    found.append(
        {
            "target": f"c=50: service throughput >= {THROUGHPUT_RATIO_MIN:g}x LiteLLM's, 0 errors",
            "measured": measured,
            "met": met,
        }
    )
    entry = report["targets"].get("service")
    rss = entry.get("rss_mb") if entry else None
    after = max(report["levels"]) if report["levels"] else None
    full = after is not None and after >= 200
    found.append(
        {
            "target": f"service RSS <= {RSS_MAX_MB:g} MB after the c=200 level",
            "measured": "not measured"
            if rss is None
            else f"{rss:.0f} MB after c={after}" + ("" if full else " (no c=200 level)"),
            "met": None if rss is None or not full else rss <= RSS_MAX_MB,
        }
    )
    return found
