"""The mock provider's words: varied justifications that name the winner, fitted to a budget."""

from __future__ import annotations

import random

from common_core.api_models import JUSTIFICATION_MAX_CHARS
from common_core.enums import EssayWinner, LLMProviderType
from services.llm_provider_service.errors import InvalidProviderResponseError

_PROVIDER = LLMProviderType.MOCK
CHARS_PER_TOKEN = 4
# What a structured answer spends on its fields besides the justification
# ({"winner": "Essay A", "confidence": 3, "justification": "..."}).
STRUCTURE_TOKENS = 16

_VERDICTS = (
    "{winner} is the stronger essay",
    "{winner} makes the more convincing case",
    "On balance, {winner} is better",
    "I prefer {winner}",
    "{winner} comes out ahead",
    "Overall, {winner} is the more effective piece",
)
_REASON_LEADS = ("thanks to", "because of", "mainly for", "owing to")
_STRENGTHS = (
    "its clearer structure",
    "a better-developed argument",
    "more precise vocabulary",
    "stronger use of evidence",
    "more coherent paragraphs",
    "fewer grammatical slips",
    "a more engaging opening",
    "a sharper conclusion",
    "closer attention to the task",
)
_LOSER_TEMPLATES = (
    "{loser} {weakness}.",
    "{loser} has merits but {weakness}.",
    "By contrast, {loser} {weakness}.",
)
_WEAKNESSES = (
    "loses focus in the middle",
    "leans on unsupported claims",
    "ends abruptly",
    "repeats its main point",
    "has more surface errors",
    "drifts from the prompt",
    "uses vaguer language",
)
_HEDGES: dict[int, tuple[str, ...]] = {
    1: ("It is a very close call.", "The two are nearly even."),
    2: ("The margin is modest.", "It is fairly close."),
    3: ("The difference is noticeable.", "The gap is real but not large."),
    4: ("The difference is clear.", "The gap is plain on a careful read."),
    5: ("The gap is decisive.", "There is little doubt here."),
}


def compose_justification(
    rng: random.Random, winner: EssayWinner, confidence: int
) -> tuple[str, list[str]]:
    """A bare verdict naming `winner`, and the sentences of a varied justification whose
    first one names `winner` and gives reasons."""
    loser = EssayWinner.ESSAY_B if winner is EssayWinner.ESSAY_A else EssayWinner.ESSAY_A
    strengths = rng.sample(_STRENGTHS, k=rng.randint(1, 2))
    verdict = rng.choice(_VERDICTS).format(winner=winner.value)
    first = f"{verdict} {rng.choice(_REASON_LEADS)} {' and '.join(strengths)}."
    rest = [
        rng.choice(_LOSER_TEMPLATES).format(loser=loser.value, weakness=rng.choice(_WEAKNESSES)),
        rng.choice(_HEDGES[confidence]),
    ]
    rng.shuffle(rest)
    if rng.random() < 0.25:  # raters do not always bother to say why the other one lost
        rest.pop(rng.randrange(len(rest)))
    return f"{verdict}.", [first, *rest]


def fit_to_budget(
    verdict: str, sentences: list[str], max_tokens: int | None, *, prefix: str = ""
) -> str:
    """`prefix`, then as many whole `sentences` as fit in `JUSTIFICATION_MAX_CHARS` and
    `max_tokens`, else the bare `verdict` (a terse answer to a tight budget).

    Raises `InvalidProviderResponseError` when not even `verdict` fits, as a vendor's
    structured answer cut off by `max_tokens` would be unparseable.
    """
    limit = JUSTIFICATION_MAX_CHARS
    if max_tokens is not None:
        limit = min(limit, (max_tokens - STRUCTURE_TOKENS) * CHARS_PER_TOKEN)
    lead = f"{prefix} " if prefix else ""
    text = ""
    for sentence in sentences:
        candidate = f"{text} {sentence}" if text else sentence
        if len(lead) + len(candidate) > limit:
            break
        text = candidate
    if not text and len(lead) + len(verdict) <= limit:
        text = verdict
    if not text:
        raise InvalidProviderResponseError(
            _PROVIDER,
            f"mock answer truncated: max_tokens_override={max_tokens} leaves no room "
            "for a complete structured judgement",
            details={"max_tokens": max_tokens},
        )
    return lead + text
