"""The batch cost benchmark at a tiny size, for Anthropic and OpenAI: every judgement of both
lanes completes once, in its own lane; the batch lane costs less for the same usage, and the
service's metrics agree with the results. No timings are asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.batch_cost import main, parser

pytestmark = pytest.mark.timeout(120)

N = 20


def test_a_small_run_completes_every_judgement_and_the_batch_lane_costs_less(
    tmp_path: Path,
) -> None:
    arguments = parser().parse_args(
        ["--comparisons", str(N), "--max-wait-seconds", "0.3", "--out", str(tmp_path)]
    )

    found = main(arguments)

    assert set(found["vendors"]) == {"anthropic", "openai"}
    for vendor, run in found["vendors"].items():
        realtime, batch = run["realtime"], run["batch"]
        assert (realtime["completed"], realtime["served_via"]) == (N, {"realtime": N}), vendor
        assert (batch["completed"], batch["served_via"]) == (N, {"batch": N}), vendor
        assert realtime["statuses"] == {200: N}
        assert batch["statuses"] == {202: N}
        assert batch["unfinished"] == 0
        # Each provider batch was counted once, and together they hold every batch request.
        assert sum(batch["batches"]) == N, vendor
        assert len(batch["batches"]) >= 1

        derived = run["derived"]
        assert 0 < batch["cost"] < derived["batch_at_realtime_price"]  # same usage, cheaper
        assert batch["cost"] == pytest.approx(derived["batch_at_realtime_price"] / 2, rel=1e-3)
        assert 0 < derived["batch_per_1000"] < derived["realtime_per_1000"]
        assert derived["saved_per_1000"] > 0

        metrics = run["metrics"]
        jobs = len(batch["batches"])
        assert metrics["llm_provider_batch_items_total"] == {"succeeded": N}
        assert metrics["llm_provider_batch_api_jobs_total"] == {"submitted": jobs, "ended": jobs}
        assert metrics["llm_provider_batch_api_items_per_job_sum"] == {"all": N}

    page = found["page"]
    assert page == tmp_path / "benchmarks-batch.md"
    text = page.read_text()
    assert "| cost per 1,000 judgements |" in text
    assert "## What they do not say" in text
    assert (tmp_path / "batch_cost.json").is_file()
