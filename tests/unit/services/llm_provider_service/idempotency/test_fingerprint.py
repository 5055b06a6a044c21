"""The idempotency fingerprint is canonical: byte-identical to the one stored before it moved
(golden digests computed by that code), and unchanged by a field a later version adds while
the request leaves it at its default."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common_core.api_models import ComparisonRequest, LLMConfigOverrides
from services.llm_provider_service.idempotency.fingerprint import fingerprint

BLOCKS = [
    {"target": "system", "content": "Rules.", "cacheable": True, "ttl": "1h"},
    {"target": "user_content", "content": "Essay A: {x}", "essay": "a", "content_hash": "h1"},
    {"target": "user_content", "content": "Essay B", "essay": "b"},
]
FULL_V1: dict[str, Any] = {
    "user_prompt": "Which essay argues better? {essay_a} vs {essay_b}",
    "essay_a": "Cats are independent.",
    "essay_b": "Dogs are loyal.",
    "correlation_id": uuid.UUID("5f0c2c43-9e49-4a8e-9d0a-4d3f6c1b2a10"),
    "user_id": "u-17",
    "metadata": {"essay_a_id": "E01", "essay_b_id": "E02", "nested": {"k": [1, 2.5, None, True]}},
    "llm_config_overrides": {
        "provider_override": "mock",
        "model_override": "m-1",
        "temperature_override": 0.2,
        "max_tokens_override": 900,
        "system_prompt_override": "Be fair.",
        "reasoning_effort": "low",
        "output_verbosity": "high",
    },
    "processing_mode": "async",
    "cache_mode": "deduplication_only",
    "priority": 7,
    "ttl_seconds": 600,
    "callback_topic": "cj.results",
    "callback_url": "https://cj.example/hook",
    "idempotency_key": "k-1",
}
ESSAYS = {"user_prompt": "Compare {essay_a} and {essay_b}", "essay_a": "A", "essay_b": "B"}
# (request, its fingerprint as computed by guard.fingerprint before it moved here)
GOLDEN: dict[str, tuple[dict[str, Any], str]] = {
    "minimal": (
        {"user_prompt": "Compare."},
        "6c15c23b8b56a25a19d8558648744ef26bb6d058247c63a6ee206c5b75ec2dc1",
    ),
    "full_v1": (FULL_V1, "dd73287f6f07cbff7363ba084a1c65fa5fc6ff8d90c6d0c0a1b554f3fb48bb01"),
    "essay_order_default": (
        {**ESSAYS, "essay_order": "randomized"},
        "c2362d7c0c43eb7258cc7634ec9f15cb1ae7135902781d7c5c0965042ad4d9b9",
    ),
    "essay_order_as_sent": (
        {**ESSAYS, "essay_order": "as_sent"},
        "67748fb8e2199beee664abcdc8d93d4b736e0ccee1c036a518a732dace406318",
    ),
    "prompt_blocks": (
        {
            "user_prompt": "Compare.",
            "essay_a": "A",
            "essay_b": "B",
            "prompt_blocks": BLOCKS,
            "metadata": {"åäö": "ünïcode ✓"},
        },
        "4950b5acf82c160e14044a4db3bbb01e27fff7a0e9a3a413c9a9e9d75f9e7282",
    ),
    "both_added": (
        {
            "user_prompt": "Compare.",
            "essay_order": "as_sent",
            "prompt_blocks": BLOCKS[:1],
            "priority": 0,
        },
        "e36171d9900771645be2ee772a7a93a88b69c5469e14046052f16e467f5b4f68",
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_the_fingerprint_is_byte_identical_to_the_stored_ones(name: str) -> None:
    body, digest = GOLDEN[name]
    assert fingerprint(ComparisonRequest.model_validate(body)) == digest


def test_the_key_itself_is_not_part_of_the_request() -> None:
    body, digest = GOLDEN["full_v1"]
    other_key = ComparisonRequest.model_validate({**body, "idempotency_key": "k-2"})
    assert fingerprint(other_key) == digest


class OverridesOfANewerVersion(LLMConfigOverrides):
    top_p_override: float | None = None


class RequestOfANewerVersion(ComparisonRequest):
    """The request as a later version might declare it: a new optional field at the top and
    one inside the overrides."""

    llm_config_overrides: OverridesOfANewerVersion | None = None
    rubric_id: str | None = None


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_a_field_added_later_and_left_unset_changes_no_fingerprint(name: str) -> None:
    body, digest = GOLDEN[name]
    newer = RequestOfANewerVersion.model_validate(body)
    assert "rubric_id" in type(newer).model_fields
    assert fingerprint(newer) == digest


@pytest.mark.parametrize(
    "added",
    [
        {"rubric_id": "R-7"},
        {"llm_config_overrides": {**FULL_V1["llm_config_overrides"], "top_p_override": 0.9}},
    ],
    ids=["top level", "in the overrides"],
)
def test_a_field_added_later_and_set_makes_another_request(added: dict[str, Any]) -> None:
    body, digest = GOLDEN["full_v1"]
    newer = RequestOfANewerVersion.model_validate({**body, **added})
    assert fingerprint(newer) != digest


def test_a_v1_field_at_its_default_still_counts() -> None:
    body, digest = GOLDEN["minimal"]
    explicit = ComparisonRequest.model_validate({**body, "metadata": {}, "priority": 5})
    assert fingerprint(explicit) == digest  # the same JSON: defaults were always included
    assert fingerprint(ComparisonRequest.model_validate({**body, "priority": 6})) != digest


# The batch lane's request: the full v1 body with processing_mode "batch" (a v1 field, so its
# value counts as any mode's did) and no cache mode, which batch refuses.
BATCH_V1 = {**FULL_V1, "processing_mode": "batch", "cache_mode": "none"}


def test_a_batch_request_has_a_fingerprint_of_its_own_and_others_keep_theirs() -> None:
    batch = fingerprint(ComparisonRequest.model_validate(BATCH_V1))
    async_twin = fingerprint(
        ComparisonRequest.model_validate({**BATCH_V1, "processing_mode": "async"})
    )

    assert batch == "124a91c986e539d2086f8318ce8ab502f8a284a9b05adf7e9378b0f9d4f78347"
    assert async_twin == "595f5914320831937928244cd9f0d50c2a81c95ac5b0d8486857f7daea893bb4"
    assert batch != async_twin  # a key reused across modes is a different request (409)
