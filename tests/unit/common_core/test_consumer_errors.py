"""Every error code of ours has a value of the consumer's platform-wide ErrorCode enum."""

from __future__ import annotations

import pytest

from common_core.consumer_errors import CONSUMER_ERROR_CODES, consumer_error_code
from common_core.enums import ErrorCode
from tests.contract.huleedu_consumer import HuleEduErrorCode


def test_every_code_of_ours_is_mapped_to_one_of_theirs() -> None:
    assert set(CONSUMER_ERROR_CODES) == set(ErrorCode)
    theirs = {code.value for code in HuleEduErrorCode}
    assert set(CONSUMER_ERROR_CODES.values()) <= theirs


@pytest.mark.parametrize(
    ("code", "details", "expected"),
    [
        ("PROVIDER_UNAVAILABLE", {"reason": "server_error"}, "LLM_PROVIDER_UNAVAILABLE"),
        ("PROVIDER_UNAVAILABLE", {"reason": "rate_limited"}, "LLM_PROVIDER_RATE_LIMIT"),
        ("PROVIDER_TIMEOUT", {}, "LLM_PROVIDER_TIMEOUT"),
        ("INVALID_PROVIDER_RESPONSE", None, "LLM_INVALID_RESPONSE"),
        ("REQUEST_EXPIRED", None, "TIMEOUT"),
        ("A_CODE_FROM_A_NEWER_REPLICA", None, "UNKNOWN_ERROR"),
    ],
)
def test_the_consumer_value_of_a_code(code: str, details: dict[str, str] | None, expected: str):
    assert consumer_error_code(code, details) == expected
    assert expected in {c.value for c in HuleEduErrorCode}
