"""The tracer provider built from the settings: spans leave the process only over OTLP/HTTP
with OTEL_EXPORTER_ENABLED, to the configured endpoint with the configured headers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.trace import SpanKind

from services.llm_provider_service.settings import Settings
from services.llm_provider_service.tracing import carrier, extract, tracer_provider


@dataclass
class Collector:
    """A stand-in OTLP/HTTP collector: records every POST it gets."""

    url: str
    posts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def collector() -> Iterator[Collector]:
    posts: list[tuple[str, dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            posts.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Collector(f"http://127.0.0.1:{server.server_address[1]}/v1/traces", posts)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def one_span(settings: Settings) -> None:
    provider = tracer_provider(settings)
    with provider.get_tracer("test").start_as_current_span("work", kind=SpanKind.INTERNAL):
        pass
    provider.shutdown()  # flushes the batch


def test_with_the_exporter_off_nothing_is_exported(
    make_settings: Callable[..., Settings], collector: Collector
):
    one_span(make_settings(otel_exporter_endpoint=collector.url))
    assert collector.posts == []


def test_with_the_exporter_on_spans_go_to_the_endpoint_with_its_headers(
    make_settings: Callable[..., Settings], collector: Collector
):
    one_span(
        make_settings(
            otel_exporter_enabled=True,
            otel_exporter_endpoint=collector.url,
            otel_exporter_headers={"authorization": "Bearer collector-token"},
            otel_service_name="llm-provider-staging",
        )
    )
    assert len(collector.posts) == 1
    path, headers, body = collector.posts[0]
    assert path == "/v1/traces"
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["authorization"] == "Bearer collector-token"
    assert b"work" in body
    assert b"llm-provider-staging" in body


def test_the_exporter_is_off_by_default_and_its_headers_are_secret():
    settings = Settings(
        environment="testing", otel_exporter_headers={"authorization": "Bearer collector-token"}
    )
    assert settings.tracing.exporter_enabled is False
    assert "collector-token" not in repr(settings)


def test_the_w3c_context_goes_out_and_comes_back(make_settings: Callable[..., Settings]):
    provider = tracer_provider(make_settings())
    tracer = provider.get_tracer("test")
    assert carrier() == {}  # no span, no header
    with tracer.start_as_current_span("work") as span:
        headers = carrier()
    context = span.get_span_context()
    trace_id, span_id = format(context.trace_id, "032x"), format(context.span_id, "016x")
    assert headers == {"traceparent": f"00-{trace_id}-{span_id}-01"}
    with tracer.start_as_current_span("next", context=extract(headers)) as child:
        assert child.get_span_context().trace_id == context.trace_id
    # An invalid header starts nothing: the W3C spec asks to ignore it.
    with tracer.start_as_current_span(
        "fresh", context=extract({"traceparent": "00-" + "0" * 32 + "-" + "1" * 16 + "-01"})
    ) as fresh:
        assert fresh.get_span_context().trace_id != 0
        assert not fresh.parent  # type: ignore[attr-defined]
    provider.shutdown()
