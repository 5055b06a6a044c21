"""Traces: the OpenTelemetry SDK set up from the settings, and the W3C context helpers.

Only this module (and `di/core.py`, which calls it) touches the SDK; the rest of the service uses
the OpenTelemetry API through a `Tracer` it is given. Spans are always made and sampled, so
trace ids, stored contexts and `traceparent` headers are real whatever the settings; they
leave the process only when OTEL_EXPORTER_ENABLED adds the OTLP/HTTP exporter. Without it
the provider has no span processor, and a finished span is simply dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.llm_provider_service.settings import Settings
from services.llm_provider_service.version import service_version

TRACER_NAME = "llm_provider_service"
_ASGIApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]
_PROPAGATOR = TraceContextTextMapPropagator()  # W3C `traceparent` and `tracestate` only


def tracer_provider(settings: Settings, exporter: SpanExporter | None = None) -> TracerProvider:
    """The SDK provider for `settings`: always sampling (a caller's unsampled flag is kept),
    exporting in batches over OTLP/HTTP only with OTEL_EXPORTER_ENABLED, or to `exporter`
    when one is given. Call `shutdown()` on it to flush what is batched."""
    resource = Resource(
        {SERVICE_NAME: settings.tracing.service_name, SERVICE_VERSION: service_version()}
    )
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(ALWAYS_ON), id_generator=_Level1Ids()
    )
    if exporter is None and settings.tracing.exporter_enabled:
        exporter = OTLPSpanExporter(
            endpoint=settings.tracing.exporter_endpoint,
            headers={k: v.get_secret_value() for k, v in settings.tracing.exporter_headers.items()},
            timeout=settings.tracing.exporter_timeout_seconds,
        )
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class _Level1Ids(RandomIdGenerator):
    """Random ids, without claiming so in the trace flags: W3C Trace Context level 2 marks
    a random trace id with flag 0x02 (`-03`), which consumers that parse level 1 (`-01`, as
    the result events' consumers do) refuse."""

    def is_trace_id_random(self) -> bool:
        return False


def default_tracer() -> trace.Tracer:
    """The global API tracer: a no-op unless something installed a provider. For classes
    built outside the composition root (tests), which then make no spans."""
    return trace.get_tracer(TRACER_NAME)


def carrier(context: Context | None = None) -> dict[str, str]:
    """The W3C headers (`traceparent`, and `tracestate` when there is one) of `context`, or
    of the current span; empty when there is no valid span."""
    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers, context=context)
    return headers


def extract(headers: Mapping[str, str] | None) -> Context:
    """The context continued from W3C headers; an empty context when they carry none or an
    invalid one (the W3C Trace Context spec asks to ignore those)."""
    return _PROPAGATOR.extract(dict(headers or {}))


def trace_id_hex(span: trace.Span | None = None) -> str | None:
    """The 32-hex-digit trace id of `span` (else the current one), None when invalid."""
    context = (span or trace.get_current_span()).get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class ServerSpans:
    """ASGI middleware: one SERVER span per HTTP request, continuing the caller's W3C
    `traceparent` (and `tracestate`), current while the app handles the request.

    The span is named `<METHOD> <route>` by the app once the route is known
    (`name_route`); without a tracer (before serving starts) requests pass untraced.
    """

    def __init__(self, app: _ASGIApp) -> None:
        self._app = app
        self.tracer: trace.Tracer | None = None

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http" or self.tracer is None:
            await self._app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
            if name.lower() in (b"traceparent", b"tracestate")
        }
        attributes = {"http.request.method": scope["method"], "url.path": scope["path"]}
        with self.tracer.start_as_current_span(
            scope["method"], context=extract(headers), kind=SpanKind.SERVER, attributes=attributes
        ) as span:

            async def traced_send(message: ASGISendEvent) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self._app(scope, receive, traced_send)


def name_route(method: str, rule: str | None) -> None:
    """Name the current server span for its route (`POST /api/v1/comparison`): the route,
    not the path, so ids in paths do not make a name per request."""
    if rule is None:
        return
    span = trace.get_current_span()
    span.update_name(f"{method} {rule}")
    span.set_attribute("http.route", rule)
