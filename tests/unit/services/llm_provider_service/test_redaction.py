"""The one redactor: vendor key shapes, bearer tokens, the configured secrets, and the log."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import pytest

from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import ProviderAuthError
from services.llm_provider_service.redaction import REDACTED, Redactor, redact_logs
from services.llm_provider_service.settings import Settings

CALLER_KEY = "caller-key-0123456789abcdef"
SECRETS = {
    "anthropic_api_key": "anthropic-secret-value-1",
    "openai_api_key": "openai-secret-value-22",
    "google_api_key": "google-secret-value-333",
    "openrouter_api_key": "openrouter-secret-4444",
    "webhook_signing_secret": "webhook-signing-secret-55555",
    "essay_order_secret": "essay-order-secret-666666",
}


@pytest.fixture
def redactor(make_settings: Callable[..., Settings]) -> Redactor:
    digest = hashlib.sha256(CALLER_KEY.encode()).hexdigest()
    settings = make_settings(**SECRETS, callers={"cj": {"key_sha256": digest}})
    return Redactor(settings.secrets(), secret_digests=settings.caller_key_digests())


@pytest.mark.parametrize(
    "key",
    [
        "sk-proj-AbCdEf0123456789_-xyz",  # OpenAI project key
        "sk-AbCdEf0123456789abcdef",  # OpenAI legacy key
        "sk-ant-api03-AbCdEf0123456789-xyz",  # Anthropic
        "sk-or-v1-0123456789abcdef0123",  # OpenRouter
        "AIzaSyA-0123456789abcdefghijklmn",  # Google
        "sk-abc***wxyz",  # OpenAI's masked echo
        "sk-proj-****...abcd",  # another masked form
        "AIzaSy***wxyz",
    ],
)
def test_vendor_key_shapes_are_redacted_whole_or_masked(redactor: Redactor, key: str) -> None:
    text = f"Incorrect API key provided: {key}. See https://platform.openai.com."

    redacted = redactor(text)

    assert key not in redacted
    assert redacted == f"Incorrect API key provided: {REDACTED} See https://platform.openai.com."


def test_a_bearer_token_is_redacted(redactor: Redactor) -> None:
    redacted = redactor("sent Authorization: Bearer abc.DEF-123_456, and failed")

    assert "abc.DEF-123_456" not in redacted
    assert redacted == f"sent Authorization: Bearer {REDACTED}, and failed"


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_every_configured_secret_is_redacted(redactor: Redactor, name: str) -> None:
    secret = SECRETS[name]

    assert redactor(f"a proxy said: bad key {secret}!") == f"a proxy said: bad key {REDACTED}!"


def test_a_callers_key_is_redacted_by_its_digest(redactor: Redactor) -> None:
    assert redactor(f"key={CALLER_KEY} refused") == f"key={REDACTED} refused"


def test_ordinary_text_is_left_alone(redactor: Redactor) -> None:
    text = (
        "a task-based, risk-averse disk-space check; sk- alone; AIza; "
        "anthropic answered 529: Overloaded (request_id: req_0123456789abcdef0123)"
    )

    assert redactor(text) == text


def test_an_errors_message_str_and_details_are_redacted(redactor: Redactor) -> None:
    secret = SECRETS["openai_api_key"]
    exc = ProviderAuthError(
        LLMProviderType.OPENAI,
        f"openai answered 401: bad key {secret}",
        status=401,
        details={"echo": f"key sk-abc***wxyz and {secret}", "nested": [{"k": secret}]},
    )

    redactor.error(exc)

    for text in (exc.message, str(exc), repr(exc.details), exc.info().model_dump_json()):
        assert secret not in text
        assert "sk-abc***wxyz" not in text
    assert exc.message == f"openai answered 401: bad key {REDACTED}"
    assert exc.details["upstream_status"] == 401


def test_no_log_line_carries_a_configured_secret(
    redactor: Redactor, caplog: pytest.LogCaptureFixture
) -> None:
    secret = SECRETS["webhook_signing_secret"]
    logger = logging.getLogger("services.llm_provider_service.test_redaction")
    remove = redact_logs(redactor)
    try:
        with caplog.at_level(logging.INFO):
            logger.info("signing with %s", secret)
            try:
                raise RuntimeError(f"refused {SECRETS['anthropic_api_key']}")
            except RuntimeError:
                logger.exception("call failed for key %r", SECRETS["openai_api_key"])
    finally:
        remove()

    assert len(caplog.records) == 2
    assert caplog.records[0].getMessage() == f"signing with {REDACTED}"
    assert "RuntimeError: refused [REDACTED]" in caplog.text
    for secret_value in SECRETS.values():
        assert secret_value not in caplog.text
