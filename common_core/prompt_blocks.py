"""`PromptBlock`: one piece of a cache-friendly prompt, and the rules across a request's blocks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from common_core.enums import CacheTTL, PromptTarget


class PromptBlock(BaseModel):
    """One piece of a cache-friendly prompt, as CJ Assessment sends them.

    `system` blocks form the system prompt and `user_content` blocks the user message, in
    order. A `cacheable` block in the prompt's stable prefix lets the provider cache that
    prefix's input tokens for `ttl` (prompt caching: the answer is always fresh).
    `content_hash` is the sender's own and never sent to a provider. `essay` marks the block
    holding essay A's or essay B's text, which the service may swap (`essay_order`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: PromptTarget
    content: str = Field(max_length=1_000_000)
    cacheable: bool = False
    ttl: CacheTTL = CacheTTL.FIVE_MINUTES
    content_hash: str | None = Field(default=None, max_length=128)
    essay: Literal["a", "b"] | None = None

    @field_validator("content")
    @classmethod
    def _content_not_blank(cls, value: str) -> str:
        return not_blank(value)


def not_blank(value: str) -> str:
    """`value`, unless it is empty or only white space (a pydantic validation error)."""
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def check_blocks(blocks: list[PromptBlock]) -> list[PromptBlock]:
    """Rules across blocks: each essay marked at most once, and, in the order the blocks are
    sent (system, then user content), no 1-hour cache TTL after a 5-minute one, which
    Anthropic refuses."""
    for mark in ("a", "b"):
        if sum(block.essay == mark for block in blocks) > 1:
            raise PydanticCustomError(
                "prompt_blocks_essay_twice",
                "essay {mark!r} marks more than one block",
                {"mark": mark},
            )
    sent = [b for b in blocks if b.target is PromptTarget.SYSTEM]
    sent += [b for b in blocks if b.target is PromptTarget.USER_CONTENT]
    seen_short = False
    for block in (b for b in sent if b.cacheable):
        if block.ttl is CacheTTL.ONE_HOUR and seen_short:
            raise PydanticCustomError(
                "prompt_blocks_ttl_order",
                "a cacheable block with ttl 1h comes after one with ttl 5m (system blocks "
                "first, then user_content blocks): longer TTLs must come first",
            )
        seen_short = seen_short or block.ttl is CacheTTL.FIVE_MINUTES
    return blocks
