"""A fake of OpenAI's Batch API (files + batches) whose batches move only when the test says.

Endpoints (research §7.2): `POST /v1/files` (multipart), `GET /v1/files/{id}/content`,
`DELETE /v1/files/{id}`, `POST /v1/batches`, `GET /v1/batches` (newest first, `limit`,
`after`), `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`. A created batch is
`validating` until `advance(id)`, which checks the input file as OpenAI does (custom ids
unique, `url` equal to the endpoint, one model) and fails the batch with line-numbered errors
(lines counted from 1) or moves it on (`in_progress`, `finalizing`). `end(id, outcomes,
status)` finishes it: rows per `batch_controls.OUTCOMES`, shuffled, into an output file
(200 rows) and an error file (the rest), each None when empty. `fail(id, code, ...)` fails
it as a whole. Operations for `hold`: upload, create, retrieve, list, cancel, content,
file_delete.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Mapping
from email.parser import BytesParser
from email.policy import default as email_policy
from typing import Any, Final

from tests.support.fake_vendors import openai_wire, wire
from tests.support.fake_vendors.asgi import Hang
from tests.support.fake_vendors.batch_controls import BatchControls, chat_rows
from tests.support.fake_vendors.wire import Answers, Reply, json_reply

_ROUTES: Final = (
    ("POST", re.compile(r"^/v1/files$"), "upload"),
    ("GET", re.compile(r"^/v1/files/([^/]+)/content$"), "content"),
    ("DELETE", re.compile(r"^/v1/files/([^/]+)$"), "file_delete"),
    ("POST", re.compile(r"^/v1/batches$"), "create"),
    ("GET", re.compile(r"^/v1/batches$"), "list"),
    ("GET", re.compile(r"^/v1/batches/([^/]+)$"), "retrieve"),
    ("POST", re.compile(r"^/v1/batches/([^/]+)/cancel$"), "cancel"),
)
_NEXT: Final = {"validating": "in_progress", "in_progress": "finalizing"}
_TERMINAL: Final = frozenset({"completed", "failed", "expired", "cancelled"})


class OpenAIBatchFake:
    """The fake's OpenAI files and batches (see the module docstring)."""

    def __init__(self, answers: Answers, lock: threading.RLock) -> None:
        self._answers = answers
        self._lock = lock
        self.controls = BatchControls(lock)
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._rng = random.Random(7)

    def reset(self) -> None:
        with self._lock:
            self.controls.reset()
            self.files.clear()
            self.batches.clear()
            self._rng.seed(7)

    # ---- the test's side --------------------------------------------------------------------

    def batch(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            copy: dict[str, Any] = json.loads(json.dumps(self.batches[batch_id]))
            return copy

    def advance(self, batch_id: str) -> str:
        """One step: validating (checked) → in_progress → finalizing; the new status."""
        with self._lock:
            batch = self.batches[batch_id]
            if batch["status"] == "validating":
                errors = _validation_errors(batch, self._lines(batch))
                if errors:
                    return self._failed(batch, errors)
                batch["request_counts"]["total"] = len(self._lines(batch))
            batch["status"] = _NEXT.get(batch["status"], batch["status"])
            return str(batch["status"])

    def end(
        self,
        batch_id: str,
        outcomes: Mapping[str, str] | None = None,
        status: str = "completed",
    ) -> None:
        """Finish the batch as `status` (completed, expired, cancelled); entries not named
        in `outcomes` succeed (completed) or never ran (expired, cancelled)."""
        default = {"completed": "succeeded", "expired": "expired"}.get(status, "cancelled")
        with self._lock:
            batch = self.batches[batch_id]
            entries = [(line["custom_id"], line["body"]) for line in self._lines(batch)]
            rows = chat_rows(self._answers, "openai", entries, outcomes or {}, default, self._rng)
            good = [r for r in rows if r["response"] and r["response"]["status_code"] == 200]
            bad = [r for r in rows if r not in good]
            batch["output_file_id"] = self._file(good, "batch_output") if good else None
            batch["error_file_id"] = self._file(bad, "batch_error") if bad else None
            batch["request_counts"] = {
                "total": len(entries),
                "completed": len(good),
                "failed": len(bad),
            }
            batch["status"] = status
            batch[f"{status}_at"] = int(time.time())

    def fail(self, batch_id: str, code: str = "invalid_request", line: int | None = None) -> None:
        """Fail the batch as a whole with one error (`line`: the input line blamed)."""
        with self._lock:
            message = f"Fake batch failure ({code})."
            error = {"code": code, "line": line, "message": message, "param": None}
            self._failed(self.batches[batch_id], [error])

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
        if op == "create":
            return self._create(body)
        with self._lock:
            if op == "upload":
                return self._upload(scope, body)
            if op == "list":
                return self._list(scope)
            table = self.files if op in ("content", "file_delete") else self.batches
            if ident not in table:
                return _error(404, f"No such object: {ident}")
            if op == "content":
                return Reply(200, self.files[ident]["data"], (), "application/octet-stream")
            if op == "file_delete":
                del self.files[ident]
                return json_reply(200, {"id": ident, "object": "file", "deleted": True})
            batch = self.batches[ident]
            if op == "cancel" and batch["status"] not in _TERMINAL:
                batch.update(status="cancelling", cancelling_at=int(time.time()))
            return json_reply(200, batch)

    def _create(self, body: bytes) -> Reply | None:
        refusal = self.controls.take_refusal()
        if refusal is not None:
            status, retry_after = refusal
            headers = (("retry-after", retry_after),) if retry_after else ()
            return _error(status, f"Batch creation refused ({status}).", headers)
        payload = json.loads(body)
        with self._lock:
            if payload.get("input_file_id") not in self.files:
                return _error(400, "Invalid 'input_file_id'.")
            batch = _batch_object(payload)
            self.batches[batch["id"]] = batch
        broken = self.controls.take_break()
        if broken == "drop_after":
            return None
        if broken == "500_after":
            return openai_wire.error("openai", "server_error", None, ())
        return json_reply(200, batch)

    def _upload(self, scope: dict[str, Any], body: bytes) -> Reply:
        headers = dict((k.decode().lower(), v) for k, v in scope["headers"])
        content_type = headers.get("content-type", b"")
        message = BytesParser(policy=email_policy).parsebytes(
            b"Content-Type: " + content_type + b"\r\n\r\n" + body
        )
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = part.get_payload(decode=True)
        data = fields.get("file") or b""
        seconds = fields.get("expires_after[seconds]")
        file = self._store(data, (fields.get("purpose") or b"").decode(), seconds)
        return json_reply(200, {k: v for k, v in file.items() if k != "data"})

    def _store(self, data: bytes, purpose: str, seconds: bytes | None) -> dict[str, Any]:
        now = int(time.time())
        file = {
            "id": f"file-{wire.hex_id()}",
            "object": "file",
            "bytes": len(data),
            "created_at": now,
            "filename": f"{purpose}.jsonl",
            "purpose": purpose,
            "status": "processed",
            "expires_at": now + int(seconds) if seconds else None,
            "data": data,
        }
        self.files[str(file["id"])] = file
        return file

    def _file(self, rows: list[dict[str, Any]], purpose: str) -> str:
        data = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
        return str(self._store(data, purpose, None)["id"])

    def _list(self, scope: dict[str, Any]) -> Reply:
        query = dict(
            pair.split("=", 1) for pair in scope["query_string"].decode().split("&") if "=" in pair
        )
        newest = list(reversed(self.batches.values()))  # dicts keep creation order
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

    def _lines(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        data = self.files.get(batch["input_file_id"], {}).get("data", b"")
        return [json.loads(line) for line in data.splitlines() if line.strip()]

    def _failed(self, batch: dict[str, Any], errors: list[dict[str, Any]]) -> str:
        batch.update(status="failed", failed_at=int(time.time()))
        batch["errors"] = {"object": "list", "data": errors}
        return "failed"


def _batch_object(payload: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    batch: dict[str, Any] = {
        "id": f"batch_{wire.hex_id()}",
        "object": "batch",
        "endpoint": payload.get("endpoint"),
        "input_file_id": payload.get("input_file_id"),
        "completion_window": payload.get("completion_window"),
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "errors": None,
        "created_at": now,
        "expires_at": now + 24 * 3600,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": payload.get("metadata"),
    }
    for stamp in ("in_progress", "finalizing", "completed", "failed", "expired", "cancelling"):
        batch[f"{stamp}_at"] = None
    batch["cancelled_at"] = None
    return batch


def _validation_errors(batch: dict[str, Any], lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    first_model = lines[0].get("body", {}).get("model") if lines else None
    for number, line in enumerate(lines, start=1):
        problem = None
        if not isinstance(line.get("custom_id"), str) or line.get("method") != "POST":
            problem = "Each line needs a custom_id and method POST."
        elif line["custom_id"] in seen:
            problem = f"Duplicate custom_id '{line['custom_id']}'."
        elif line.get("url") != batch["endpoint"]:
            problem = f"The url must match the batch endpoint {batch['endpoint']}."
        elif line.get("body", {}).get("model") != first_model:
            problem = f"All requests in a batch must use the same model ({first_model})."
        seen.add(str(line.get("custom_id")))
        if problem:
            errors.append(
                {"code": "invalid_request", "line": number, "message": problem, "param": None}
            )
    return errors


def _error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None}}
    return json_reply(status, body, headers)
