"""Synthetic essays for the CJ demo, whose quality follows their true ability.

A better essay (higher θ) makes more of the task's good points and fewer weak ones, so a
real LLM judge has something to judge. For the mock's Bradley-Terry rater each essay also
carries its ability as a marker (`ability_marker`), which the rater reads from the prompt
as it is presented: leave markers out for a real provider, which should judge the text.
"""

from __future__ import annotations

import math

import numpy as np

from demos.cj_demo.design import Design
from services.llm_provider_service.providers.ability_marker import ability_marker

TASK = "Should schools require pupils to wear uniforms?"
USER_PROMPT = (
    f'Two pupils answered the essay task "{TASK}" Compare the two essays as a teacher would: '
    "the strength of the argument, its use of evidence, its structure and its clarity. Decide "
    "which essay is better overall."
)
_GOOD = (
    "Uniforms take visible wealth out of the classroom, so pupils are judged less by what "
    "their parents can afford.",
    "A study of schools in Ohio found fewer reports of bullying after uniforms came in, "
    "although the effect was small.",
    "Critics say uniforms limit self-expression, but pupils still express themselves through "
    "their work, their clubs and their friendships.",
    "Families also save time on school mornings, which matters most for parents who work "
    "early shifts.",
    "The cost of a uniform can be eased with second-hand sales, which several schools already run.",
    "Most importantly, a shared uniform marks the school day as a time for learning, much as "
    "a work uniform does for adults.",
    "In conclusion, the benefits for fairness and focus outweigh the loss of choice.",
)
_WEAK = (
    "uniforms are good because everyone says so.",
    "Also they are nice colors mostly.",
    "some people dont like them but they are wrong.",
    "I think uniforms is better then normal clothes.",
    "Anyway thats my opinion on the matter.",
)


def essay_text(index: int, theta: float, *, marker: bool) -> str:
    """The essay of item `index` with ability `theta` (logits, about -3 to 3).

    The number of good points rises with θ (one at θ ≈ -2.5, all seven at θ ≈ 2.5) and the
    weak sentences fill the rest; which ones is fixed by `index`, so an essay's text is the
    same in every arm and every replicate.
    """
    good = min(len(_GOOD), max(1, math.floor(4 + 1.2 * theta)))
    weak = max(0, 5 - good)
    rng = np.random.default_rng(1000 + index)
    points = [_GOOD[i] for i in sorted(rng.choice(len(_GOOD), size=good, replace=False))]
    slips = [_WEAK[i] for i in rng.choice(len(_WEAK), size=min(weak, len(_WEAK)), replace=False)]
    sentences = [*points[:-1], *slips, points[-1]] if len(points) > 1 else [*slips, *points]
    text = " ".join(sentences)
    return f"{text} {ability_marker(theta)}" if marker else text


def essay_texts(design: Design, *, markers: bool) -> list[str]:
    """Every essay of `design`, by item index."""
    return [essay_text(i, float(t), marker=markers) for i, t in enumerate(design.theta)]
