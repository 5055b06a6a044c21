"""Hypercorn's own HTTP/1.1 error answers in the API's one error shape.

Hypercorn answers a request that h11 cannot parse (a malformed request line or header,
headers over `h11_max_incomplete_size`, an unsupported Transfer-Encoding) itself, before the
app sees it, with an empty body: `H11Protocol._send_error_response(status)` is that one
place. Hypercorn has no hook for it, so `use_json_protocol_errors()` replaces the
`H11Protocol` that Hypercorn's `ProtocolWrapper` builds for each connection with a subclass
that overrides only that method. `__main__` calls it before serving; so do the tests' served
app. Pinned by `tests/integration/test_http_edges.py` against the locked Hypercorn version.
"""

from __future__ import annotations

import uuid
from itertools import chain

import h11
import hypercorn.protocol
from hypercorn.protocol.h11 import H11Protocol

from common_core.api_models import ErrorDetail, ErrorResponse
from common_core.enums import ErrorCode

_CODES = {
    400: (ErrorCode.BAD_REQUEST, "the request is not valid HTTP/1.1"),
    431: (ErrorCode.HEADERS_TOO_LARGE, "the request's headers are too large"),
    501: (ErrorCode.NOT_IMPLEMENTED, "the request's Transfer-Encoding is not supported"),
}
CORRELATION_HEADER = b"x-correlation-id"


def protocol_error_body(status: int, correlation_id: uuid.UUID) -> bytes:
    """The error body of a status Hypercorn answers itself (h11's hints: 400, 431, 501;
    any other 4xx is `BAD_REQUEST`, any 5xx `INTERNAL_ERROR`)."""
    fallback = (
        (ErrorCode.BAD_REQUEST, "the request is not valid HTTP/1.1")
        if status < 500
        else (ErrorCode.INTERNAL_ERROR, "the server could not read the request")
    )
    code, message = _CODES.get(status, fallback)
    detail = ErrorDetail(code=code.value, message=message, correlation_id=correlation_id)
    return ErrorResponse(error=detail).model_dump_json().encode()


class JsonErrorH11Protocol(H11Protocol):
    """Hypercorn's HTTP/1.1 protocol, answering protocol errors with a JSON error body and
    a fresh correlation id (the request's own header could not be read)."""

    async def _send_error_response(self, status_code: int) -> None:
        correlation_id = uuid.uuid4()
        body = protocol_error_body(status_code, correlation_id)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (CORRELATION_HEADER, str(correlation_id).encode()),
            (b"connection", b"close"),
        ]
        await self._send_h11_event(
            h11.Response(
                status_code=status_code,
                headers=list(chain(headers, self.config.response_headers("h11"))),
            )
        )
        await self._send_h11_event(h11.Data(data=body))
        await self._send_h11_event(h11.EndOfMessage())


def use_json_protocol_errors() -> None:
    """Make every HTTP/1.1 connection Hypercorn opens from now on, in this process, answer
    its protocol errors in the error shape. Idempotent."""
    hypercorn.protocol.H11Protocol = JsonErrorH11Protocol  # type: ignore[attr-defined]
