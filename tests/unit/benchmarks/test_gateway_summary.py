"""The throughput target's verdict says when the run itself could not have met it: direct SDK
calls, with no service between, slower than the target's rate."""

from __future__ import annotations

from typing import Any

from benchmarks.gateway.summary import checks


def _report(direct: float, service: float, litellm: float) -> dict[str, Any]:
    def level(throughput: float) -> dict[str, Any]:
        return {"concurrency": 50, "throughput": throughput, "errors": 0}

    return {
        "levels": [50],
        "targets": {
            "direct": {"levels": [level(direct)]},
            "service": {"levels": [level(service)], "rss_mb": 150.0},
            "litellm": {"levels": [level(litellm)]},
        },
    }


def _throughput_check(report: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in checks(report) if c["target"].startswith("c=50"))


def test_a_target_above_what_direct_calls_reach_is_called_out_as_beyond_this_run() -> None:
    check = _throughput_check(_report(direct=575, service=338, litellm=100))

    assert check["met"] is False
    assert "3.4x" in check["measured"]
    assert "direct SDK calls reach only 575 req/s (5.8x LiteLLM)" in check["measured"]


def test_a_target_within_what_direct_calls_reach_gets_no_such_remark() -> None:
    check = _throughput_check(_report(direct=1900, service=338, litellm=100))

    assert check["met"] is False
    assert "direct SDK calls" not in check["measured"]


def test_a_met_target_is_met() -> None:
    check = _throughput_check(_report(direct=1900, service=1200, litellm=100))

    assert check["met"] is True
