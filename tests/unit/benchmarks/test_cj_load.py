"""The CJ load test's accounting: a comparison judged twice, never, or under another's
metadata is counted as such (the integration run cannot provoke these)."""

from __future__ import annotations

from benchmarks.cj_load import CJLoadOptions, Tally, summarize


def _judged(tally: Tally, key: tuple[int, int], echoed: tuple[int, int], request_id: str) -> None:
    tally.sent_at.setdefault(key, 0.0)
    result = {"request_id": request_id, "metadata": {"session": echoed[0], "pair": echoed[1]}}
    tally.judged(key, result, 1.0)


def test_every_miscount_is_reported() -> None:
    options = CJLoadOptions(sessions=1, comparisons=4, outage_seconds=0)
    tally = Tally()
    _judged(tally, (0, 0), (0, 0), "r1")
    _judged(tally, (0, 1), (0, 1), "r2")
    _judged(tally, (0, 1), (0, 1), "r2")  # answered twice, under the same request id
    _judged(tally, (0, 2), (0, 9), "r3")  # an answer carrying a comparison never sent
    tally.sent_at[(0, 3)] = 0.0  # never answered

    report = summarize(tally, options, started=0.0, healed=0.5)

    assert report["judged_exactly_once"] == 1
    assert report["judged_more_than_once"] == 1
    assert report["not_judged"] == 2
    assert report["lost"] == 2
    assert report["unexpected_judgements"] == 1
    assert report["duplicate_request_ids"] == 1


def test_a_clean_run_counts_every_comparison_once() -> None:
    options = CJLoadOptions(sessions=2, comparisons=2, outage_seconds=0)
    tally = Tally()
    for number, key in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        _judged(tally, key, key, f"r{number}")

    report = summarize(tally, options, started=0.0, healed=0.5)

    assert (report["judged_exactly_once"], report["lost"], report["not_judged"]) == (4, 0, 0)
    assert report["latency_ms"]["p50"] == 1000.0
