"""One HTTP exchange with the service: send, translate failures into typed errors, parse the
body into the API's models. No retries here (see `backoff.RetryPolicy`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import httpx
from pydantic import BaseModel, ValidationError

from common_core.client.backoff import parse_retry_after
from common_core.client.errors import (
    TRANSPORT_CONNECTION,
    TRANSPORT_PROTOCOL,
    TRANSPORT_TIMEOUT,
    UNEXPECTED_RESPONSE_CODE,
    LLMProviderServiceError,
    TransportError,
    error_from_response,
)

ModelT = TypeVar("ModelT", bound=BaseModel)

COMPARISON_PATH = "/api/v1/comparison"
STATUS_PATH = "/api/v1/status/{queue_id}"
STATUS_WS_PATH = "/api/v1/ws/status/{queue_id}"
USER_AGENT = f"llm-provider-client/1 httpx/{httpx.__version__}"


class ServiceHttp:
    """The service at `base_url`, reached through `http`, `timeout` seconds per request;
    `api_key` goes with every request (HTTP and WebSocket) as a bearer token."""

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, *, api_key: str | None, timeout: float
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
        self._http = http
        self._base = base_url.rstrip("/")
        self.auth_headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        self._headers.update(self.auth_headers)
        self.timeout = timeout

    def ws_url(self, queue_id: UUID) -> str:
        """The status WebSocket's URL: the same host and port, ws for http, wss for https."""
        parts = urlsplit(self._base)
        scheme = "wss" if parts.scheme == "https" else "ws"
        path = parts.path + STATUS_WS_PATH.format(queue_id=queue_id)
        return urlunsplit((scheme, parts.netloc, path, "", ""))

    async def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The answer, whatever its status. Raises `TransportError` when there is none:
        code TIMEOUT or CONNECTION_ERROR (worth retrying), PROTOCOL_ERROR (not)."""
        try:
            return await self._http.request(
                method,
                self._base + path,
                json=json,
                headers={**self._headers, **(headers or {})},
                timeout=self.timeout,
            )
        except httpx.TimeoutException as exc:
            raise TransportError(
                f"{method} {path}: no answer within {self.timeout} s ({type(exc).__name__})",
                code=TRANSPORT_TIMEOUT,
            ) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise TransportError(
                f"{method} {path}: connection failed: {exc!r}", code=TRANSPORT_CONNECTION
            ) from exc
        except httpx.HTTPError as exc:
            raise TransportError(
                f"{method} {path}: request could not be sent: {exc!r}", code=TRANSPORT_PROTOCOL
            ) from exc


def retry_after_of(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))


def error_of(response: httpx.Response) -> LLMProviderServiceError:
    """The typed error for an answer that is not the one the caller expected."""
    return error_from_response(
        response.status_code,
        response.content,
        response.headers,
        retry_after=retry_after_of(response),
    )


def parse_model(model: type[ModelT], response: httpx.Response) -> ModelT:
    """The body as `model`; raises `LLMProviderServiceError` (UNEXPECTED_RESPONSE) when the
    body does not match it."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise LLMProviderServiceError(
            f"HTTP {response.status_code} body is not a {model.__name__}: {exc}",
            code=UNEXPECTED_RESPONSE_CODE,
            status=response.status_code,
        ) from exc


def expect(model: type[ModelT], response: httpx.Response, status: int = 200) -> ModelT:
    """The body as `model` when the answer has `status`, else raise its typed error."""
    if response.status_code != status:
        raise error_of(response)
    return parse_model(model, response)
