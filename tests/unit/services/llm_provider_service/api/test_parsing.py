"""`nested_too_deep`: the depth check that runs before any parser, on untrusted bytes."""

from __future__ import annotations

import json

import pytest

from services.llm_provider_service.api.parsing import MAX_JSON_DEPTH, nested_too_deep


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("body", "too_deep"),
    [
        (nested(MAX_JSON_DEPTH), False),
        (nested(MAX_JSON_DEPTH + 1), True),
        (b"[" * 100_000, True),
        (b'{"a":' * 1_000, True),
        (json.dumps({"essay": "[" * 5_000}).encode(), False),  # brackets inside a string
        (json.dumps({"essay": 'say \\"[[[\\" and \\\\'}).encode(), False),
        (json.dumps(["\\", "[" * 100]).encode(), False),  # an escaped backslash ends no string
        (b"[" * 10 + b'"' + b"[" * 70, False),  # unterminated: the rest is inside the string
    ],
)
def test_depth_counts_only_brackets_outside_strings(body: bytes, too_deep: bool):
    assert nested_too_deep(body) is too_deep


@pytest.mark.timeout(10)  # a hang guard: the regex it replaces took about 45 minutes here
def test_an_unterminated_string_of_escaped_quotes_is_checked_in_linear_time():
    # 65 opening brackets pass the cheap pre-check; then a string that never closes, made
    # of escaped quotes, the worst case for a backtracking string pattern. 1 MiB: the most a
    # body may be.
    body = b"[" * (MAX_JSON_DEPTH + 1) + b'"' + b'\\"' * ((1 << 20) // 2 - 40)

    assert nested_too_deep(body) is True  # 65 levels open before the string
