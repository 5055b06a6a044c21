"""Hypercorn's own error answers in the API's one error shape.

Hypercorn answers some requests itself, before or instead of the app, with an empty body:
one h11 cannot parse (a malformed request line or header: 400; headers over
`h11_max_incomplete_size`: 431; an unsupported Transfer-Encoding: 501), an invalid WebSocket
handshake (400), and an app that ended without answering (500). Each comes from a
`_send_error_response(status)` method, of the HTTP/1.1 protocol and of the HTTP and WebSocket
streams. Hypercorn has no hook for them, so `use_json_protocol_errors()` replaces the
classes Hypercorn builds for each connection and stream (the names its `protocol`,
`protocol.h11` and `protocol.h2` modules look up) with subclasses that override only that
method, to send the error shape, a new correlation id (the request's own header may not be
readable) and `Connection: close`. `__main__` calls it before serving; so do the tests'
served app. Pinned by `tests/integration/test_http_edges.py` and
`tests/e2e/test_server_errors.py` against the locked Hypercorn version.

The HTTP/1.1 subclass also marks `Connection: close` on an answer the app gives before the
request's body has arrived: Hypercorn closes such a connection afterwards without saying so.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from itertools import chain
from time import time

import h11
import hypercorn.protocol
import hypercorn.protocol.h2
import hypercorn.protocol.h11
from hypercorn.protocol.events import Body, EndBody, Response
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.typing import ResponseSummary

from common_core.api_models import ErrorDetail, ErrorResponse
from common_core.enums import ErrorCode

_CODES = {
    400: (ErrorCode.BAD_REQUEST, "the request is malformed (HTTP or WebSocket handshake)"),
    404: (ErrorCode.NOT_FOUND, "no such host"),
    403: (ErrorCode.FORBIDDEN, "the WebSocket was refused"),
    431: (ErrorCode.HEADERS_TOO_LARGE, "the request's headers are too large"),
    501: (ErrorCode.NOT_IMPLEMENTED, "the request's Transfer-Encoding is not supported"),
}
_OTHER_4XX = (ErrorCode.BAD_REQUEST, "the request was refused")
_OTHER_5XX = (ErrorCode.INTERNAL_ERROR, "the server could not answer the request")
CORRELATION_HEADER = b"x-correlation-id"


def protocol_error(status: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The body and headers of a status Hypercorn answers itself (any 4xx not listed is
    `BAD_REQUEST`, any 5xx `INTERNAL_ERROR`)."""
    code, message = _CODES.get(status, _OTHER_4XX if status < 500 else _OTHER_5XX)
    correlation_id = uuid.uuid4()
    detail = ErrorDetail(code=code.value, message=message, correlation_id=correlation_id)
    body = ErrorResponse(error=detail).model_dump_json().encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (CORRELATION_HEADER, str(correlation_id).encode()),
        (b"connection", b"close"),
    ]
    return body, headers


class JsonErrorH11Protocol(H11Protocol):
    """HTTP/1.1 whose protocol errors (h11 could not parse the request) have a JSON body,
    and whose answers say `Connection: close` when Hypercorn is going to close it."""

    async def stream_send(self, event: StreamEvent) -> None:
        if (
            isinstance(event, Response)
            and event.status_code >= 200
            and self.connection.their_state is h11.SEND_BODY
        ):
            # Answered before the request's body arrived (a 401 or 415 decided on the
            # headers): Hypercorn closes the connection rather than read the rest
            # (`_maybe_recycle`), so the answer says so, or a keep-alive client sends its
            # next request into a closed connection.
            event = replace(event, headers=[*event.headers, (b"connection", b"close")])
        await super().stream_send(event)

    async def _send_error_response(self, status_code: int) -> None:
        body, headers = protocol_error(status_code)
        await self._send_h11_event(
            h11.Response(
                status_code=status_code,
                headers=list(chain(headers, self.config.response_headers("h11"))),
            )
        )
        await self._send_h11_event(h11.Data(data=body))
        await self._send_h11_event(h11.EndOfMessage())


async def _send_stream_error(stream: HTTPStream | WSStream, status_code: int) -> None:
    body, headers = protocol_error(status_code)
    await stream.send(
        Response(stream_id=stream.stream_id, headers=headers, status_code=status_code)
    )
    await stream.send(Body(stream_id=stream.stream_id, data=body))
    await stream.send(EndBody(stream_id=stream.stream_id))
    summary = ResponseSummary(status=status_code, headers=headers)
    await stream.config.log.access(stream.scope, summary, time() - stream.start_time)


class JsonErrorHTTPStream(HTTPStream):
    """An HTTP stream whose own error answer (the app ended without one: 500) is JSON."""

    async def _send_error_response(self, status_code: int) -> None:
        await _send_stream_error(self, status_code)
        self.state = ASGIHTTPState.CLOSED


class JsonErrorWSStream(WSStream):
    """A WebSocket stream whose own error answers (an invalid handshake: 400; refused by
    the app before accepting: 403; the app ended without an answer: 500) are JSON."""

    async def _send_error_response(self, status_code: int) -> None:
        await _send_stream_error(self, status_code)


def use_json_protocol_errors() -> None:
    """Make every connection and stream Hypercorn opens from now on, in this process,
    answer its own errors in the error shape. Idempotent."""
    hypercorn.protocol.H11Protocol = JsonErrorH11Protocol  # type: ignore[attr-defined]
    for module in (hypercorn.protocol.h11, hypercorn.protocol.h2):
        module.HTTPStream = JsonErrorHTTPStream  # type: ignore[attr-defined]
        module.WSStream = JsonErrorWSStream  # type: ignore[attr-defined]
