"""`/openapi.json` is a valid OpenAPI document that says what each route needs and answers, and
`/docs` and `/redocs` load every script and stylesheet from the service itself."""

from __future__ import annotations

import importlib.metadata
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
from openapi_spec_validator import validate
from quart.typing import TestClientProtocol as Client

from tests.integration.conftest import StartApp
from tests.support.callers import policy

ERROR_REF = "#/components/schemas/ErrorResponse"
BEARER = "bearerAuth"

# The error statuses each operation can answer (`errors.py`, `api/errors.py`, the routes).
# 500 and, for routes behind a caller key, 401 come on top.
EXPECTED_ERRORS: dict[tuple[str, str], set[int]] = {
    ("post", "/api/v1/comparison"): {400, 403, 408, 409, 413, 415, 422, 429, 502, 503, 504},
    ("get", "/api/v1/status/{queue_id}"): {400, 404, 503},
    ("delete", "/api/v1/status/{queue_id}"): {400, 404, 409, 503},
    ("get", "/api/v1/providers"): {503},
    ("post", "/api/v1/providers/{provider}/test"): {400, 403, 429},
    ("get", "/api/v1/position-bias"): {503},
    ("post", "/api/v1/dev/mock-fault"): {400, 403, 408, 413, 415},
    ("get", "/healthz"): set(),
    ("get", "/livez"): set(),
    ("get", "/readyz"): set(),
    ("get", "/metrics"): set(),
}
OPEN_PATHS = {"/healthz", "/livez", "/readyz", "/metrics"}


@pytest.fixture
async def spec(client: Client) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = await response.get_json()
    return document


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method, path): op for path, ops in spec["paths"].items() for method, op in ops.items()}


def header_names(op: dict[str, Any]) -> set[str]:
    return {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}


def is_error_response(status: str, response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return int(status) >= 400 and schema.get("$ref") == ERROR_REF


async def test_the_document_passes_the_openapi_validator(spec: dict[str, Any]):
    validate(spec)  # raises on an invalid document


async def test_the_document_covers_every_route(spec: dict[str, Any]):
    assert set(operations(spec)) == set(EXPECTED_ERRORS)


async def test_the_version_is_the_packages(spec: dict[str, Any]):
    assert spec["info"]["version"] == importlib.metadata.version("llm-provider-service")


async def test_every_operation_has_a_whole_summary_and_a_description(spec: dict[str, Any]):
    for key, op in operations(spec).items():
        summary = op.get("summary", "")
        assert summary.endswith("."), f"{key}: summary {summary!r} is not a whole sentence"
        assert summary[0].isupper(), f"{key}: summary {summary!r}"
        assert op.get("description", "").strip(), f"{key}: no description"
        assert op.get("responses"), f"{key}: no responses"


async def test_every_error_status_is_documented_with_the_error_schema(spec: dict[str, Any]):
    assert spec["components"]["schemas"]["ErrorResponse"]["required"] == ["error"]
    for key, op in operations(spec).items():
        expected = EXPECTED_ERRORS[key] | {500} | ({401} if key[1] not in OPEN_PATHS else set())
        errors = {int(s) for s, r in op["responses"].items() if is_error_response(s, r)}
        assert errors == expected, key
        for status in expected:
            assert op["responses"][str(status)]["description"], (key, status)


async def test_routes_behind_a_caller_key_declare_the_bearer_scheme(spec: dict[str, Any]):
    scheme = spec["components"]["securitySchemes"][BEARER]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for (method, path), op in operations(spec).items():
        if path in OPEN_PATHS:
            assert "security" not in op, (method, path)
            assert "401" not in op["responses"], (method, path)
        else:
            assert op["security"] == [{BEARER: []}], (method, path)
            assert "WWW-Authenticate" in op["responses"]["401"]["headers"], (method, path)


async def test_the_documented_security_is_what_the_routes_enforce(
    spec: dict[str, Any], start_app: StartApp
):
    guarded = await start_app(callers={"ops": policy("ops-key", admin=True)}, worker_enabled=False)
    for (method, path), op in operations(spec).items():
        url = path.format(queue_id="00000000-0000-4000-8000-000000000000", provider="mock")
        response = await guarded.open(url, method=method.upper(), json={})
        refused = response.status_code == 401
        assert refused == ("security" in op), (method, path, response.status_code)


async def test_headers_are_documented_both_ways(spec: dict[str, Any]):
    ops = operations(spec)
    for key, op in ops.items():
        assert "X-Correlation-ID" in header_names(op), key
        for status, response in op["responses"].items():
            assert "X-Correlation-ID" in response["headers"], (key, status)
            if status in {"429", "503"} and is_error_response(status, response):
                assert "Retry-After" in response["headers"], (key, status)
    comparison = ops[("post", "/api/v1/comparison")]
    assert {"Idempotency-Key", "traceparent"} <= header_names(comparison)
    assert {"Retry-After", "Location"} <= set(comparison["responses"]["202"]["headers"])


async def test_metrics_is_documented_as_text(spec: dict[str, Any]):
    ok = operations(spec)[("get", "/metrics")]["responses"]["200"]
    assert set(ok["content"]) == {"text/plain"}


class _Assets(HTMLParser):
    """The URLs a page loads: script sources and linked stylesheets."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in ("src", "href"):
            if attributes.get(name):
                self.urls.append(str(attributes[name]))


@pytest.mark.parametrize("page", ["/docs", "/redocs"])
async def test_the_docs_pages_load_their_assets_from_the_service(client: Client, page: str):
    response = await client.get(page)
    assert response.status_code == 200
    parser = _Assets()
    parser.feed(await response.get_data(as_text=True))
    assert parser.urls, f"{page} loads no script"
    for url in parser.urls:
        parts = urlsplit(url)
        assert not parts.scheme, f"{page} loads {url} from elsewhere"
        assert not parts.netloc, f"{page} loads {url} from elsewhere"
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(await asset.get_data()) > 10_000, url
        cache = asset.headers["Cache-Control"]
        assert "immutable" in cache, (url, cache)
        assert "max-age=31536000" in cache, (url, cache)


async def test_an_unknown_asset_is_not_found(client: Client):
    for url in (
        "/docs-assets/redoc-0.0.0/redoc.standalone.js",
        "/docs-assets/redoc-2.5.4/LICENSE",
        "/docs-assets/redoc-2.5.4/missing.js",
    ):
        response = await client.get(url)
        assert response.status_code == 404, url
        assert (await response.get_json())["error"]["code"] == "NOT_FOUND"
