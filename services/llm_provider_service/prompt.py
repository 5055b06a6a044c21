"""Turns a comparison request into the prompt a provider judges: essays placed, never dropped."""

from __future__ import annotations

import hashlib
import re

from common_core.api_models import ComparisonRequest
from services.llm_provider_service.errors import RequestValidationError
from services.llm_provider_service.models import ComparisonPrompt

_PLACEHOLDER = re.compile(r"\{(essay_a|essay_b)\}")

DEFAULT_SYSTEM_PROMPT = (
    "You are an experienced assessor making a comparative judgement of two student essays. "
    "Read both essays against the task and decide which one is better overall. "
    'Answer with the winner ("Essay A" or "Essay B"), a justification of at most 500 '
    "characters, and your confidence on a scale from 1 (a guess) to 5 (certain)."
)


def render_prompt(request: ComparisonRequest, *, swapped: bool = False) -> ComparisonPrompt:
    """Place each essay at its placeholder, or append it as a labelled section.

    With `swapped` the two essays trade places: essay_b's text goes where `{essay_a}` stands
    (or into the "Essay A:" section) and essay_a's where `{essay_b}` stands, so the provider
    sees the caller's essay_b labelled "Essay A". Raises `RequestValidationError` when the
    prompt names a placeholder whose essay is missing, since sending a literal `{essay_a}`
    to a model would be a silent bug.
    """
    given = {"essay_a": request.essay_a, "essay_b": request.essay_b}
    present = set(_PLACEHOLDER.findall(request.user_prompt))
    for name in sorted(present):
        if given[name] is None:
            raise RequestValidationError(
                f"user_prompt contains {{{name}}} but {name} is missing", details={"field": name}
            )
    if swapped and (request.essay_a is None or request.essay_b is None):
        raise ValueError("only a request with both essays can be presented swapped")
    # Where each text goes: by the slot's name, from the caller's essay of the same name or,
    # swapped, of the other name.
    essays = {"essay_a": request.essay_b, "essay_b": request.essay_a} if swapped else given
    # One pass, not str.format or chained str.replace: essays may contain braces, or even the
    # other essay's placeholder, and must reach the model exactly as written.
    text = _PLACEHOLDER.sub(lambda m: essays[m.group(1)] or "", request.user_prompt)
    for name, label in (("essay_a", "Essay A"), ("essay_b", "Essay B")):
        essay = essays[name]
        if essay is not None and name not in present:
            text = f"{text}\n\n{label}:\n{essay}"
    overrides = request.llm_config_overrides
    system = overrides.system_prompt_override if overrides else None
    return ComparisonPrompt(user_prompt=text, system_prompt=system or DEFAULT_SYSTEM_PROMPT)


def prompt_sha256(prompt: ComparisonPrompt) -> str:
    """A fingerprint of what was asked, for consumers to group replicate judgements."""
    digest = hashlib.sha256()
    digest.update(prompt.system_prompt.encode())
    digest.update(b"\x00")
    digest.update(prompt.user_prompt.encode())
    return digest.hexdigest()
