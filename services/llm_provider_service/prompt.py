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


def render_prompt(request: ComparisonRequest) -> ComparisonPrompt:
    """Place each essay at its placeholder, or append it as a labelled section.

    Raises `RequestValidationError` when the prompt names a placeholder whose essay is
    missing, since sending a literal `{essay_a}` to a model would be a silent bug.
    """
    essays = {"essay_a": request.essay_a, "essay_b": request.essay_b}
    present = set(_PLACEHOLDER.findall(request.user_prompt))
    for name in sorted(present):
        if essays[name] is None:
            raise RequestValidationError(
                f"user_prompt contains {{{name}}} but {name} is missing", details={"field": name}
            )
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
