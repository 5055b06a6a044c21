"""Turns a comparison request into the prompt a provider judges: essays placed, never dropped."""

from __future__ import annotations

import hashlib
import re

from common_core.api_models import ComparisonRequest
from common_core.enums import PromptTarget
from common_core.prompt_blocks import PromptBlock
from services.llm_provider_service.errors import RequestValidationError
from services.llm_provider_service.models import ComparisonPrompt, PromptPart

_PLACEHOLDER = re.compile(r"\{(essay_a|essay_b)\}")
_LABELS = (("essay_a", "Essay A"), ("essay_b", "Essay B"))

DEFAULT_SYSTEM_PROMPT = (
    "You are an experienced assessor making a comparative judgement of two student essays. "
    "Read both essays against the task and decide which one is better overall. "
    'Answer with the winner ("Essay A" or "Essay B"), a justification of at most 500 '
    "characters, and your confidence on a scale from 1 (a guess) to 5 (certain)."
)


def essay_fields_given(request: ComparisonRequest) -> bool:
    return request.essay_a is not None and request.essay_b is not None


def essay_blocks_given(request: ComparisonRequest) -> bool:
    marks = {block.essay for block in request.prompt_blocks or ()}
    return {"a", "b"} <= marks


def render_prompt(request: ComparisonRequest, *, swapped: bool = False) -> ComparisonPrompt:
    """The request's prompt: `prompt_blocks` when given (system blocks, then user_content
    blocks; `user_prompt` and the system prompt fill in for a target without blocks), each
    essay at its placeholder or appended as a labelled part.

    With `swapped` the two essays trade places: essay_b's text goes where `{essay_a}` stands
    (or into the "Essay A:" part) and the other way round, and the blocks marked essay "a"
    and "b" trade contents, so the provider sees the caller's essay_b labelled "Essay A".
    Raises `RequestValidationError` when a placeholder's essay is missing (a literal
    `{essay_a}` sent to a model would be a silent bug), and `ValueError` for `swapped` when
    the request has neither both essays nor both essay blocks.
    """
    if swapped and not (essay_fields_given(request) or essay_blocks_given(request)):
        raise ValueError("only a request with both essays can be presented swapped")
    blocks = _blocks_in_order(request, swap_marked=swapped and essay_blocks_given(request))
    system = [b for b in blocks if b.target is PromptTarget.SYSTEM]
    user = [b for b in blocks if b.target is PromptTarget.USER_CONTENT]
    given = {"essay_a": request.essay_a, "essay_b": request.essay_b}
    templates = [b.content for b in user] if user else [request.user_prompt]
    present = {name for text in templates for name in _PLACEHOLDER.findall(text)}
    for name in sorted(present):
        if given[name] is None:
            raise RequestValidationError(
                f"a prompt contains {{{name}}} but {name} is missing", details={"field": name}
            )
    # Where each text goes: by the slot's name, from the caller's essay of the same name or,
    # swapped, of the other name.
    essays = given
    if swapped and essay_fields_given(request):
        essays = {"essay_a": request.essay_b, "essay_b": request.essay_a}
    user_parts = [_part(b.content, b, essays) for b in user] or [
        _part(request.user_prompt, None, essays)
    ]
    for name, label in _LABELS:
        essay = essays[name]
        if essay is not None and name not in present:
            user_parts.append(PromptPart(text=f"{label}:\n{essay}"))
    return ComparisonPrompt(
        system_parts=tuple(_part(b.content, b, {}) for b in system) or _default_system(request),
        user_parts=tuple(user_parts),
    )


def _blocks_in_order(request: ComparisonRequest, *, swap_marked: bool) -> list[PromptBlock]:
    """The request's blocks; with `swap_marked`, those marked "a" and "b" trade contents
    (each keeps its place, target and caching)."""
    blocks = list(request.prompt_blocks or ())
    if swap_marked:
        a = next(i for i, b in enumerate(blocks) if b.essay == "a")
        b = next(i for i, b in enumerate(blocks) if b.essay == "b")
        first, second = blocks[a], blocks[b]
        blocks[a] = first.model_copy(update={"content": second.content})
        blocks[b] = second.model_copy(update={"content": first.content})
    return blocks


def _part(text: str, block: PromptBlock | None, essays: dict[str, str | None]) -> PromptPart:
    # One pass, not str.format or chained str.replace: essays may contain braces, or even the
    # other essay's placeholder, and must reach the model exactly as written.
    placed = _PLACEHOLDER.sub(lambda m: essays[m.group(1)] or "", text) if essays else text
    # A block that had an essay placed in it differs per request: caching it would only
    # pay for cache writes.
    cacheable = block is not None and block.cacheable and placed == text
    return PromptPart(text=placed, cache_ttl=block.ttl if cacheable and block else None)


def _default_system(request: ComparisonRequest) -> tuple[PromptPart, ...]:
    overrides = request.llm_config_overrides
    system = overrides.system_prompt_override if overrides else None
    return (PromptPart(text=system or DEFAULT_SYSTEM_PROMPT),)


def prompt_sha256(prompt: ComparisonPrompt) -> str:
    """A fingerprint of what was asked, for consumers to group replicate judgements."""
    digest = hashlib.sha256()
    digest.update(prompt.system_prompt.encode())
    digest.update(b"\x00")
    digest.update(prompt.user_prompt.encode())
    return digest.hexdigest()
