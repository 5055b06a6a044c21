"""One redactor for secrets in text that leaves the service: vendor keys, tokens, our secrets.

`Redactor` replaces, in any text, with `[REDACTED]`:

- the shapes of vendor keys, whole or masked as vendors echo them in error messages
  ("Incorrect API key provided: sk-abc***wxyz"): `sk-…` (OpenAI, `sk-proj-…`), `sk-ant-…`
  (Anthropic), `sk-or-…` (OpenRouter), `AIza…` (Google);
- the token of an `Authorization: Bearer …` (a caller's key, a vendor key);
- the configured secrets, verbatim: the vendor API keys, `WEBHOOK_SIGNING_SECRET` and
  `ESSAY_ORDER_SECRET` (`Settings.secrets`); and any token whose SHA-256 is a caller's
  `key_sha256` (`Settings.caller_key_digests`; the service never holds callers' keys in plain text).

The composition root builds one from the settings (`di/core.py`). It is applied where vendor
messages enter the service's errors (`RedactingProvider`), so the error response, the
`failure` event, the result event, `last_error` and the log all carry the redacted text;
and `RedactingLogFilter`, on every handler of the root logger, redacts every log line of
the process (message, arguments and traceback) as a last line of defence.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from services.llm_provider_service.errors import ServiceError

REDACTED = "[REDACTED]"
REDACTS_EVERY_LINE = "redacts_every_line"
"""Set on a log formatter that redacts what it formats, so `redact_logs` leaves its handler."""
MIN_SECRET_CHARS = 8
"""A configured secret shorter than this is not searched for: it would redact ordinary words."""

_KEY_CHARS = r"[A-Za-z0-9_\-*.…]"
_VENDOR_KEYS = re.compile(rf"(?<![A-Za-z0-9_\-])(?:sk-{_KEY_CHARS}{{3,}}|AIza{_KEY_CHARS}{{4,}})")
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[^\s,;\"'<>]+")
_TOKENS = re.compile(r"[A-Za-z0-9_\-.~+/]{16,}=*")


class Redactor:
    """Redacts secrets from text (see the module docstring). Immutable once built."""

    def __init__(self, secrets: Iterable[str] = (), *, secret_digests: Iterable[str] = ()) -> None:
        kept = {s for s in secrets if len(s) >= MIN_SECRET_CHARS}
        self._secrets = sorted(kept, key=len, reverse=True)  # a longer one may hold a shorter
        self._digests = frozenset(d.lower() for d in secret_digests)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _VENDOR_KEYS.sub(REDACTED, text)
        text = _BEARER.sub(rf"\1\2{REDACTED}", text)
        if self._digests:
            text = _TOKENS.sub(self._unless_a_caller_key, text)
        return text

    def _unless_a_caller_key(self, match: re.Match[str]) -> str:
        token = match.group(0)
        digest = hashlib.sha256(token.encode()).hexdigest()
        return REDACTED if digest in self._digests else token

    def error(self, exc: ServiceError) -> ServiceError:
        """`exc` with its message (and `str(exc)`) and its string details redacted, in place."""
        exc.message = self(exc.message)
        exc.args = (exc.message, *exc.args[1:])
        exc.details = {key: self.value(value) for key, value in exc.details.items()}
        return exc

    def value(self, value: Any) -> Any:
        """`value` with every string in it redacted (in dicts, lists and tuples too)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if type(value) is tuple:  # not a named tuple: its fields are not strings to redact
            return tuple(self.value(item) for item in value)
        return value


class RedactingLogFilter(logging.Filter):
    """Redacts a record's message (with its arguments merged in) and its traceback."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):  # a structlog call: its event dict, kept a dict
            record.msg = self._redact.value(record.msg)
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format: leave the record for logging to report
            return True
        record.msg, record.args = self._redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True


def redact_logs(redactor: Redactor) -> Callable[[], None]:
    """Put a `RedactingLogFilter` on every handler of the root logger whose formatter does
    not redact itself; returns the function that takes it off again (the app does on
    shutdown)."""
    log_filter = RedactingLogFilter(redactor)
    # The service's own formatter (`logging_setup.log_formatter`) redacts every line it
    # writes already; its handler is not given the same work twice per line.
    handlers = [
        handler
        for handler in logging.getLogger().handlers
        if not getattr(handler.formatter, REDACTS_EVERY_LINE, False)
    ]
    for handler in handlers:
        handler.addFilter(log_filter)

    def remove() -> None:
        for handler in handlers:
            handler.removeFilter(log_filter)

    return remove
