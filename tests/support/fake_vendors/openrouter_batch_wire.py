"""A fake of OpenRouter's Batch API (beta) whose batches move only when the test says.

Endpoints (research §5, §7.4), under both `/api/v1` and `/api/beta`: `POST /batches` (202;
400 when `requests` comes before `endpoint` or `model` in the raw JSON, or when a request's
`model` differs from the batch's), `GET /batches` (newest first, `limit`, `after`),
`GET /batches/{id}` (`results` inline only once `completed`, with `usage.cost`),
`DELETE /batches/{id}` (409 unless terminal). There is no cancel route (404). `advance(id)`
moves validating → in_progress → finalizing; `end(id, outcomes, status)` and `fail(id,
message)` finish it. Operations for `hold`: create, list, retrieve, delete.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, Final

from tests.support.fake_vendors import openai_wire, wire
from tests.support.fake_vendors.asgi import Hang
from tests.support.fake_vendors.batch_controls import BatchControls, chat_rows
from tests.support.fake_vendors.wire import Answers, Reply, json_reply

_PREFIX: Final = r"^/api/(?:v1|beta)/batches"
_ROUTES: Final = (
    ("POST", re.compile(_PREFIX + r"$"), "create"),
    ("GET", re.compile(_PREFIX + r"$"), "list"),
    ("GET", re.compile(_PREFIX + r"/([^/]+)$"), "retrieve"),
    ("DELETE", re.compile(_PREFIX + r"/([^/]+)$"), "delete"),
    ("POST", re.compile(_PREFIX + r"/([^/]+)/cancel$"), "cancel"),
)
_NEXT: Final = {"validating": "in_progress", "in_progress": "finalizing"}
_TERMINAL: Final = frozenset({"completed", "failed", "expired", "cancelled"})


class OpenRouterBatchFake:
    """The fake's OpenRouter batches (see the module docstring)."""

    def __init__(self, answers: Answers, lock: threading.RLock) -> None:
        self._answers = answers
        self._lock = lock
        self.controls = BatchControls(lock)
        self.batches: dict[str, dict[str, Any]] = {}
        self._requests: dict[str, list[dict[str, Any]]] = {}
        self._rng = random.Random(11)

    def reset(self) -> None:
        with self._lock:
            self.controls.reset()
            self.batches.clear()
            self._requests.clear()
            self._rng.seed(11)

    # ---- the test's side --------------------------------------------------------------------

    def batch(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            copy: dict[str, Any] = json.loads(json.dumps(self.batches[batch_id]))
            return copy

    def advance(self, batch_id: str) -> str:
        with self._lock:
            batch = self.batches[batch_id]
            batch["status"] = _NEXT.get(batch["status"], batch["status"])
            return str(batch["status"])

    def end(
        self,
        batch_id: str,
        outcomes: Mapping[str, str] | None = None,
        status: str = "completed",
    ) -> None:
        """Finish the batch as `status`; only a completed one has `results`."""
        with self._lock:
            batch = self.batches[batch_id]
            entries = [(r["custom_id"], r["body"]) for r in self._requests[batch_id]]
            rows = chat_rows(
                self._answers, "openrouter", entries, outcomes or {}, "succeeded", self._rng
            )
            good = [r for r in rows if r["response"] and r["response"]["status_code"] == 200]
            tokens = sum(r["response"]["body"]["usage"]["total_tokens"] for r in good)
            batch["request_counts"] = {
                "total": len(entries),
                "completed": len(good),
                "failed": len(rows) - len(good),
            }
            batch["usage"] = {"total_tokens": tokens, "cost": tokens * 1e-7, "is_byok": False}
            batch["results"] = rows if status == "completed" else None
            batch["status"] = status
            batch["finalized_at"] = int(time.time())

    def fail(self, batch_id: str, message: str = "Batch failed validation.") -> None:
        with self._lock:
            batch = self.batches[batch_id]
            batch.update(status="failed", error={"message": message})

    # ---- the server's side ------------------------------------------------------------------

    def owns(self, method: str, path: str) -> bool:
        return any(m == method and p.match(path) for m, p, _ in _ROUTES)

    async def serve(self, scope: dict[str, Any], body: bytes, hang: Hang) -> Reply | None:
        method, path = scope["method"], scope["path"]
        op, key = next((o, p.match(path)) for m, p, o in _ROUTES if m == method and p.match(path))
        self.controls.record(op, scope, body)
        if not await self.controls.wait_if_held(op, hang):
            return None
        ident = key.group(1) if key and key.groups() else ""
        if op == "cancel":
            return _error(404, "Not found")
        if op == "create":
            return self._create(body)
        with self._lock:
            if op == "list":
                return self._list(scope)
            batch = self.batches.get(ident)
            if batch is None:
                return _error(404, f"Batch {ident} not found")
            if op == "retrieve":
                return json_reply(200, batch)
            if batch["status"] not in _TERMINAL:
                return _error(409, "Only a terminal batch can be deleted")
            del self.batches[ident]
            deletion = {"openrouter": "deleted", "upstream": {}}
            return json_reply(200, {"id": ident, "object": "batch", "deletion": deletion})

    def _create(self, body: bytes) -> Reply | None:
        refusal = self.controls.take_refusal()
        if refusal is not None:
            status, retry_after = refusal
            headers = (("retry-after", retry_after),) if retry_after else ()
            return _error(status, f"Batch creation refused ({status}).", headers)
        problem = _order_problem(body)
        payload = json.loads(body) if problem is None else {}
        requests = payload.get("requests") or []
        if problem is None and any(
            r.get("body", {}).get("model") != payload["model"] for r in requests
        ):
            problem = "Every request's model must equal the batch model."
        if problem is not None:
            return _error(400, problem)
        batch = _batch_object(payload)
        with self._lock:
            self.batches[batch["id"]] = batch
            self._requests[batch["id"]] = requests
        broken = self.controls.take_break()
        if broken == "drop_after":
            return None
        if broken == "500_after":
            return openai_wire.error("openrouter", "server_error", None, ())
        return json_reply(202, batch)

    def _list(self, scope: dict[str, Any]) -> Reply:
        query = dict(
            pair.split("=", 1) for pair in scope["query_string"].decode().split("&") if "=" in pair
        )
        newest = [{**b, "results": None} for b in reversed(self.batches.values())]
        if "after" in query:
            ids = [b["id"] for b in newest]
            newest = newest[ids.index(query["after"]) + 1 :] if query["after"] in ids else []
        page = newest[: int(query.get("limit", 20))]
        return json_reply(
            200,
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(newest) > len(page),
            },
        )


def _order_problem(body: bytes) -> str | None:
    """OpenRouter stream-parses the body: `endpoint` and `model` must precede `requests`."""
    text = body.decode(errors="replace")
    positions = {key: text.find(f'"{key}"') for key in ("endpoint", "model", "requests")}
    if min(positions.values()) < 0:
        return "'endpoint', 'model' and 'requests' are required."
    if positions["requests"] < max(positions["endpoint"], positions["model"]):
        return "'endpoint' and 'model' must come before 'requests'."
    return None


def _batch_object(payload: dict[str, Any]) -> dict[str, Any]:
    count = len(payload.get("requests") or [])
    return {
        "id": f"batch_{wire.hex_id()}",
        "object": "batch",
        "endpoint": payload.get("endpoint"),
        "model": payload.get("model"),
        "completion_window": "24h",
        "status": "validating",
        "created_at": int(time.time()),
        "finalized_at": None,
        "request_counts": {"total": count, "completed": 0, "failed": 0},
        "usage": None,
        "results": None,
        "error": None,
    }


def _error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return json_reply(status, {"error": {"message": message, "code": status}}, headers)
