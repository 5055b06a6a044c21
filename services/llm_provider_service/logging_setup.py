"""Every log line of the process, stdlib's and structlog's alike, rendered by one structlog
formatter on the root handler: JSON (one object a line) or a readable console line.

Fields of every line: `timestamp` (ISO 8601, UTC), `level`, `logger`, `event` (the message);
where known, the context bound with `bind_log_context` (`correlation_id`, `request_id`,
`queue_id`, `caller`, `provider`, `model`, `delivery_id`, ...), the `extra=` fields of a
stdlib call (the access log's), and `exception` (the formatted traceback). Every string of
every line passes the `Redactor` last. The field reference is `documentation/logging.md`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from services.llm_provider_service.redaction import REDACTS_EVERY_LINE, Redactor
from services.llm_provider_service.settings import LogFormat, Settings

ACCESS_LOGGER = "llm_provider_service.access"

_FIRST_FIELDS = ("timestamp", "level", "logger", "event")


def bind_log_context(**fields: object) -> None:
    """Bind `fields` (None values left out, others as strings) to every line the current
    task logs from now on, and to the tasks it starts."""
    structlog.contextvars.bind_contextvars(
        **{name: str(value) for name, value in fields.items() if value is not None}
    )


def clear_log_context() -> None:
    """Forget what `bind_log_context` bound in the current context (a new request)."""
    structlog.contextvars.clear_contextvars()


def redact_event(redactor: Redactor) -> Processor:
    """A processor that redacts every string of the event dict, nested ones included."""

    def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        return {name: redactor.value(value) for name, value in event_dict.items()}

    return redact


def render_console(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> str:
    """`timestamp LEVEL logger [field=value ...]: message`, then the traceback if any: the
    plain-text shape the process always wrote, the context before the message so that a
    message which ends a line (an event's JSON) still does."""
    fields = dict(event_dict)
    timestamp, level = fields.pop("timestamp", ""), str(fields.pop("level", "")).upper()
    name, message = fields.pop("logger", ""), fields.pop("event", "")
    exception = fields.pop("exception", None)
    context = " ".join(f"{key}={value}" for key, value in fields.items())
    line = f"{timestamp} {level} {name}{f' [{context}]' if context else ''}: {message}"
    return f"{line}\n{exception}" if exception else line


def _fields_first(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """The fixed fields first, so that a line reads the same way every time."""
    first = {name: event_dict.pop(name) for name in _FIRST_FIELDS if name in event_dict}
    return {**first, **event_dict}


def _add_pid(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    event_dict["pid"] = os.getpid()
    return event_dict


def _shared_processors(with_pid: bool = False) -> list[Processor]:
    """What both stdlib records and structlog calls go through before rendering; `with_pid`
    names the process on every line, for processes that share one stream (`serve` with
    several SERVE_WORKERS)."""
    return [
        structlog.contextvars.merge_contextvars,
        *([_add_pid] if with_pid else []),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]


def log_formatter(
    log_format: LogFormat, redactor: Redactor, *, with_pid: bool = False
) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of the root handler: every record in `log_format`, redacted."""
    renderer: Processor = (
        structlog.processors.JSONRenderer() if log_format == "json" else render_console
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *_shared_processors(with_pid),
            structlog.stdlib.ExtraAdder(),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # `exception`: the formatted traceback
            structlog.processors.StackInfoRenderer(),
            redact_event(redactor),
            _fields_first,
            renderer,
        ],
    )
    setattr(formatter, REDACTS_EVERY_LINE, True)  # no second redaction by `redact_logs`
    return formatter


def drop_broker_reconnect_noise(record: logging.LogRecord) -> bool:
    """aiokafka logs an ERROR for every failed reconnect while the broker is down; the
    Kafka publisher reports the outage once, with its cause, so those lines are dropped."""
    return not (
        record.name.startswith("aiokafka") and record.getMessage().startswith("Unable connect")
    )


def configure_logging(
    settings: Settings, stream: TextIO | None = None, *, with_pid: bool = False
) -> logging.Handler:
    """Make the root logger's one handler write every line to `stream` (stderr) in
    `settings.log_format`, at `settings.log_level`; structlog loggers go through the same
    handler. Python's warnings become log lines too. `with_pid`: every line carries the
    process id (`pid`). Returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    redactor = Redactor(settings.secrets(), secret_digests=settings.caller_key_digests())
    handler.setFormatter(log_formatter(settings.resolved_log_format, redactor, with_pid=with_pid))
    handler.addFilter(drop_broker_reconnect_noise)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    logging.captureWarnings(True)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            *_shared_processors(with_pid),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return handler


def log_access(
    *,
    method: str,
    route: str | None,
    path: str,
    status: int,
    duration_seconds: float,
    size: int | None,
    client: str | None,
) -> None:
    """One access line for an HTTP request or WebSocket: never a body or a header; the
    correlation id and the caller come from the bound context."""
    fields = {
        "method": method,
        "route": route,
        "path": path,
        "status": status,
        "duration_ms": round(duration_seconds * 1000, 3),
        "bytes": size,
        "client": client,
    }
    logging.getLogger(ACCESS_LOGGER).info("%s %s %d", method, path, status, extra=fields)
