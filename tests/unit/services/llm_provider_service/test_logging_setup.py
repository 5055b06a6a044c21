"""The processor chain every log line goes through: JSON or console, the same fields for
stdlib and structlog loggers, the bound context, exceptions as a field, secrets redacted."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from services.llm_provider_service.logging_setup import (
    bind_log_context,
    clear_log_context,
    configure_logging,
    log_formatter,
)
from services.llm_provider_service.redaction import RedactingLogFilter, Redactor, redact_logs
from services.llm_provider_service.settings import Settings
from tests.support.processes import _EVENT_LINE

SECRET = "sk-test-0123456789abcdef"


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    """What `configure_logging` (JSON, a vendor key configured) writes; the root logger,
    structlog and the warnings capture are put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    settings = Settings(_env_file=None, log_format="json", openai_api_key=SecretStr(SECRET))
    try:
        configure_logging(settings, stream)
        clear_log_context()
        yield stream
    finally:
        clear_log_context()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)
        structlog.reset_defaults()


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_stdlib_and_structlog_lines_carry_the_same_fields(out: io.StringIO):
    logging.getLogger("some.library").warning("pool %s of %d", "redis", 3)
    structlog.get_logger("llm_provider_service.native").warning("pool %s of %d", "redis", 3)

    stdlib, native = _lines(out)
    assert stdlib.keys() == native.keys() == {"timestamp", "level", "logger", "event"}
    assert (stdlib["event"], native["event"]) == ("pool redis of 3", "pool redis of 3")
    assert (stdlib["level"], native["level"]) == ("warning", "warning")
    assert (stdlib["logger"], native["logger"]) == ("some.library", "llm_provider_service.native")
    for line in (stdlib, native):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line["timestamp"])


def test_the_level_setting_applies_to_both(out: io.StringIO):
    logging.getLogger("quiet").debug("not shown")
    structlog.get_logger("quiet").debug("not shown")

    assert out.getvalue() == ""


async def test_bound_context_names_the_lines_of_the_task_and_its_children(out: io.StringIO):
    logger = logging.getLogger("llm_provider_service.test")

    async def request(correlation_id: str, caller: str | None) -> None:
        bind_log_context(correlation_id=correlation_id, caller=caller, provider=None)
        await asyncio.create_task(asyncio.to_thread(lambda: None))
        await asyncio.create_task(_log(logger, f"inside {correlation_id}"))

    await asyncio.gather(
        asyncio.create_task(request("c-1", "cj_assessment")),
        asyncio.create_task(request("c-2", None)),
    )
    logger.info("outside")

    by_event = {line["event"]: line for line in _lines(out)}
    assert by_event["inside c-1"]["correlation_id"] == "c-1"
    assert by_event["inside c-1"]["caller"] == "cj_assessment"
    assert by_event["inside c-2"]["correlation_id"] == "c-2"
    assert "caller" not in by_event["inside c-2"]  # None is left out
    assert "provider" not in by_event["inside c-1"]
    assert "correlation_id" not in by_event["outside"]  # tasks do not leak into their parent


async def _log(logger: logging.Logger, message: str) -> None:
    logger.info(message)


def test_an_exception_is_a_field_and_secrets_are_redacted_everywhere(out: io.StringIO):
    logger = logging.getLogger("vendor.sdk")
    try:
        raise RuntimeError(f"Incorrect API key provided: {SECRET}")
    except RuntimeError:
        logger.exception("call failed with %s", SECRET, extra={"detail": f"Bearer {SECRET}"})
    structlog.get_logger("native").error("refused", key=SECRET, nested={"items": [SECRET]})

    stdlib, native = _lines(out)
    assert SECRET not in out.getvalue()
    assert stdlib["event"] == "call failed with [REDACTED]"
    assert stdlib["detail"] == "Bearer [REDACTED]"
    assert stdlib["exception"].startswith("Traceback (most recent call last)")
    assert "RuntimeError: Incorrect API key provided: [REDACTED]" in stdlib["exception"]
    assert native["key"] == "[REDACTED]"
    assert native["nested"] == {"items": ["[REDACTED]"]}


def test_the_redacting_filter_on_the_root_handler_keeps_structlog_lines_whole(out: io.StringIO):
    # `redact_logs` puts the filter on root handlers whose formatter does not redact (caplog's,
    # one a library adds); a structlog line must stay whole through it on any handler.
    handler = logging.getLogger().handlers[0]
    log_filter = RedactingLogFilter(Redactor([SECRET]))
    handler.addFilter(log_filter)
    try:
        structlog.get_logger("native").info("sent", to=f"hook with {SECRET}")
        logging.getLogger("stdlib").info("sent to hook with %s", SECRET)
    finally:
        handler.removeFilter(log_filter)

    native, stdlib = _lines(out)
    assert native["event"] == "sent"
    assert native["to"] == "hook with [REDACTED]"
    assert stdlib["event"] == "sent to hook with [REDACTED]"


def test_redact_logs_leaves_the_services_own_handler_which_redacts_already(out: io.StringIO):
    plain = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(plain)
    ours = logging.getLogger().handlers[0]
    remove = redact_logs(Redactor([SECRET]))
    try:
        assert not any(isinstance(f, RedactingLogFilter) for f in ours.filters)  # once: formatter
        assert len(plain.filters) == 1
        logging.getLogger("stdlib").info("sent to hook with %s", SECRET)
    finally:
        remove()
        logging.getLogger().removeHandler(plain)

    assert _lines(out)[-1]["event"] == "sent to hook with [REDACTED]"


def test_warnings_and_the_server_log_become_lines(out: io.StringIO):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("an SDK is deprecated", DeprecationWarning, stacklevel=1)
    logging.getLogger("hypercorn.error").info("Running on http://127.0.0.1:8080")

    warned, server = _lines(out)
    assert warned["logger"] == "py.warnings"
    assert "an SDK is deprecated" in warned["event"]
    assert server["logger"] == "hypercorn.error"


def test_aiokafkas_reconnect_noise_is_dropped(out: io.StringIO):
    logging.getLogger("aiokafka").error("Unable connect to node with id 1: refused")
    logging.getLogger("aiokafka").error("something else")

    assert [line["event"] for line in _lines(out)] == ["something else"]


def test_the_console_line_keeps_the_message_last_so_event_lines_still_parse():
    record = logging.LogRecord(
        "llm_provider_service.events",
        logging.INFO,
        __file__,
        1,
        "event topic=%s %s",
        ("huleedu.llm_provider.request_started.v1", '{"data": {}}'),
        None,
    )
    bind_log_context(correlation_id="c-1", caller="cj_assessment")
    try:
        line = log_formatter("console", Redactor()).format(record)
    finally:
        clear_log_context()

    shape = re.fullmatch(
        r"\S+Z INFO llm_provider_service\.events \[(?P<context>[^\]]+)\]: "
        r"event topic=huleedu\.llm_provider\.request_started\.v1 \{\"data\": \{\}\}",
        line,
    )
    assert shape is not None, line
    assert set(shape["context"].split()) == {"correlation_id=c-1", "caller=cj_assessment"}
    match = _EVENT_LINE.search(line)
    assert match is not None
    assert match["topic"] == "huleedu.llm_provider.request_started.v1"
