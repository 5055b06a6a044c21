"""A Gemini batch job as the fake upstream keeps it, and its wire shape (an Operation whose
`metadata` is the job, with the inline responses in `metadata.output` and `response`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Job:
    """One job as the fake keeps it; `wire()` is how the API shows it (create, get, list)."""

    name: str
    model: str
    display_name: str
    requests: list[dict[str, Any]]
    state: str = "BATCH_STATE_PENDING"
    created: str = field(default_factory=now)
    updated: str = field(default_factory=now)
    output: list[dict[str, Any]] | None = None
    error: dict[str, Any] | None = None

    def wire(self) -> dict[str, Any]:
        count = len(self.requests)
        done = self.state not in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING")
        stats = {"requestCount": str(count), "pendingRequestCount": str(0 if done else count)}
        meta: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": f"models/{self.model}",
            "displayName": self.display_name,
            "createTime": self.created,
            "updateTime": self.updated,
            "state": self.state,
            "batchStats": stats,
        }
        body: dict[str, Any] = {"name": self.name, "metadata": meta, "done": done}
        if done:
            meta["endTime"] = self.updated
        if self.output is not None:
            failed = sum(1 for r in self.output if "error" in r)
            stats.update(successfulRequestCount=str(count - failed), failedRequestCount=str(failed))
            output = {"inlinedResponses": {"inlinedResponses": self.output}}
            meta["output"] = output
            body["response"] = {"@type": "GenerateContentBatchOutput", **output}
        if self.error is not None:
            body["error"] = self.error
        return body
