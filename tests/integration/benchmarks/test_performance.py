"""The performance benchmark at a tiny size: both parts run, the report has its shape, and the
CJ load test accounts for every comparison. No timings are asserted: the numbers are noise."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.performance import main, parser

pytestmark = pytest.mark.timeout(120)


def test_a_tiny_run_reports_every_target_and_loses_no_comparison(tmp_path: Path) -> None:
    arguments = parser().parse_args(
        [
            *("--levels", "1,2", "--requests", "6", "--skip-litellm", "--sessions", "2"),
            *("--comparisons", "5", "--outage-seconds", "2", "--out", str(tmp_path)),
        ]
    )

    found = main(arguments)

    gateway = found["gateway"]
    assert set(gateway["targets"]) == {"direct", "service"}
    assert any("skipped" in note for note in gateway["notes"])
    for name, entry in gateway["targets"].items():
        assert [row["concurrency"] for row in entry["levels"]] == [1, 2]
        for row in entry["levels"]:
            assert (row["answered"], row["errors"]) == (6, 0), (name, row["error_kinds"])
            assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
            overheads = [row[f"overhead_p{p}_ms"] for p in (50, 95, 99)]
            assert all(x is None for x in overheads) if name == "direct" else None not in overheads
    assert gateway["targets"]["service"]["rss_mb"] > 0
    verdicts = [check["met"] for check in gateway["checks"]]
    assert len(verdicts) == 3
    assert verdicts[0] in (True, False)  # c=1 was measured
    assert verdicts[1:] == [None, None]  # no c=50 with LiteLLM, no c=200

    cj = found["cj_load"]
    assert cj["requests"] == 10
    assert cj["answered_at_once"] + cj["queued"] == 10
    assert cj["queued"] >= 1  # the outage queued the second half
    assert cj["judged_exactly_once"] == 10
    assert cj["lost"] == cj["judged_more_than_once"] == cj["duplicate_request_ids"] == 0
    assert cj["refused"] == {}
    assert cj["ended_without_judgement"] == {}

    page = found["page"]
    assert page == tmp_path / "performance.md"
    text = page.read_text()
    assert "| target of issue 15 | measured | verdict |" in text
    assert "none lost, each judged exactly once" in text
    assert {p.name for p in (tmp_path / "images").iterdir()} == {
        "performance-latency.png",
        "performance-throughput.png",
        "performance-cj-load.png",
    }
    assert {"gateway.json", "cj_load.json"} <= {p.name for p in tmp_path.iterdir()}
