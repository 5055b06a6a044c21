"""The fake Message Batches' batches and their results lines: each entry's outcome, chosen
by the test, as the line Anthropic would write for it (see `anthropic_batch_wire.py`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from tests.support.fake_vendors import anthropic_wire
from tests.support.fake_vendors.wire import Answers, FaultKind

Outcome = Literal[
    "succeeded",  # a judgement, as the realtime fake answers
    "schema_invalid",  # succeeded, but the tool input breaks the schema
    "max_tokens",  # succeeded, but cut off at the token limit
    "errored",  # invalid_request_error: fix the request
    "retryable",  # api_error
    "overloaded",  # overloaded_error
    "expired",
    "canceled",
    "missing",  # no line at all
    "duplicate",  # a succeeded line, twice
]

_ERRORS: Final[dict[str, str]] = {
    "errored": "invalid_request_error",
    "retryable": "api_error",
    "overloaded": "overloaded_error",
}
_FAULTS: Final[dict[str, FaultKind | None]] = {  # the realtime fake's fault per outcome
    "succeeded": None,
    "duplicate": None,
    "schema_invalid": "schema_violation",
    "max_tokens": "max_tokens",
}


@dataclass
class FakeBatch:
    """One batch as the fake keeps it; `lines` are its results once ended."""

    id: str
    requests: list[dict[str, Any]]
    created_at: datetime
    status: str = "in_progress"
    ended_at: datetime | None = None
    cancel_initiated_at: datetime | None = None
    counts: dict[str, int] | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)

    def json(self, host: str) -> dict[str, Any]:
        """The `MessageBatch` object; `results_url` is absolute, back to this fake."""
        ended = self.status == "ended"
        processing = {"processing": len(self.requests), "succeeded": 0, "errored": 0}
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status,
            "request_counts": self.counts or {**processing, "canceled": 0, "expired": 0},
            "created_at": iso(self.created_at),
            "expires_at": iso(self.created_at + timedelta(hours=24)),
            "ended_at": iso(self.ended_at),
            "cancel_initiated_at": iso(self.cancel_initiated_at),
            "archived_at": None,
            "results_url": f"http://{host}/v1/messages/batches/{self.id}/results"
            if ended
            else None,
        }


def end_batch(
    answers: Answers, batch: FakeBatch, outcomes: Mapping[str, Outcome], default: Outcome
) -> None:
    """Fill `batch`'s results lines (shuffled) and final counts; the caller holds the lock."""
    chosen = [(r, outcomes.get(r["custom_id"], default)) for r in batch.requests]
    lines = [line for request, outcome in chosen for line in _lines(answers, request, outcome)]
    shuffled = list(lines)
    answers.rng.shuffle(shuffled)
    if len(shuffled) > 1 and shuffled == lines:  # never the input order
        shuffled = shuffled[1:] + shuffled[:1]
    batch.lines = shuffled
    batch.counts = _counts([outcome for _, outcome in chosen])


def _lines(answers: Answers, request: dict[str, Any], outcome: Outcome) -> list[dict[str, Any]]:
    custom_id, params = request["custom_id"], request["params"]
    if outcome == "missing":
        return []
    if outcome in ("expired", "canceled"):
        return [{"custom_id": custom_id, "result": {"type": outcome}}]
    if outcome in _ERRORS:
        return [_errored(custom_id, _ERRORS[outcome], "Request failed.")]
    reply = anthropic_wire.answer(answers, "anthropic", "/v1/messages", params, _FAULTS[outcome])
    answer = json.loads(reply.body)
    if reply.status != 200:  # params the Messages API refuses: errored once processed
        return [_errored(custom_id, answer["error"]["type"], answer["error"]["message"])]
    answer["usage"]["service_tier"] = "batch"
    line = {"custom_id": custom_id, "result": {"type": "succeeded", "message": answer}}
    return [line, line] if outcome == "duplicate" else [line]


def _counts(outcomes: list[Outcome]) -> dict[str, int]:
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    for outcome in outcomes:
        if outcome in ("expired", "canceled"):
            counts[outcome] += 1
        elif outcome in _ERRORS:
            counts["errored"] += 1
        else:
            counts["succeeded"] += 1
    return counts


def _errored(custom_id: str, kind: str, message: str) -> dict[str, Any]:
    error = {"type": "error", "error": {"type": kind, "message": message}, "request_id": None}
    return {"custom_id": custom_id, "result": {"type": "errored", "error": error}}


def iso(moment: datetime | None) -> str | None:
    """RFC 3339, as Anthropic writes its timestamps."""
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None
