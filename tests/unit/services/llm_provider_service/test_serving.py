"""What `serve` (`serving.py`) hands Hypercorn."""

from __future__ import annotations

import logging

import pytest
from hypercorn.logging import Logger
from pydantic import SecretStr

from services.llm_provider_service.redaction import Redactor, redact_logs
from services.llm_provider_service.serving import hypercorn_config
from services.llm_provider_service.settings import Settings


def test_hypercorns_error_log_passes_the_root_handlers_so_it_is_redacted(
    caplog: pytest.LogCaptureFixture,
):
    settings = Settings(_env_file=None, openai_api_key=SecretStr("sk-test-0123456789abcdef"))
    errorlog = Logger(hypercorn_config(settings)).error_logger
    remove = redact_logs(Redactor(settings.secrets(), secret_digests=settings.caller_key_digests()))
    try:
        with caplog.at_level(logging.ERROR):
            assert errorlog is not None
            errorlog.error("upstream said: key sk-test-0123456789abcdef refused")
    finally:
        remove()

    assert errorlog.propagate
    assert not errorlog.handlers
    assert "sk-test-0123456789abcdef" not in caplog.text
    assert "[REDACTED]" in caplog.text
