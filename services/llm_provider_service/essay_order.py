"""Server-side essay order: which requests the provider sees swapped, and the way back.

LLM judges prefer the essay shown first (or second), by model and prompt. Presenting about
half the requests swapped, chosen by a keyed hash of the request id rather than by anything
in the request, makes that preference random noise that cancels out in a Bradley-Terry fit
and measurable in the position-bias report. The answer is mapped back, so callers only ever
see their own essay_a and essay_b.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import uuid

from common_core.api_models import ComparisonRequest
from common_core.enums import EssayOrder, EssayWinner, PresentationOrder
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import ComparisonJob, Judgement
from services.llm_provider_service.prompt import essay_blocks_given, essay_fields_given
from services.llm_provider_service.protocols import PositionBiasStore

logger = logging.getLogger(__name__)

# "Essay A", "essay B", "ESSAY A's": the labels a justification names the essays by.
_LABEL = re.compile(r"\b(Essay|essay|ESSAY) ([AB])\b")
_OTHER_LETTER = {"A": "B", "B": "A"}
_OTHER_WINNER = {EssayWinner.ESSAY_A: EssayWinner.ESSAY_B, EssayWinner.ESSAY_B: EssayWinner.ESSAY_A}


def choose_presentation(
    request: ComparisonRequest, request_id: uuid.UUID, key: bytes
) -> tuple[PresentationOrder, bool]:
    """The order to present `request` in, and whether it was chosen at random.

    Randomized only with `essay_order` "randomized" and both essays given (as `essay_a` and
    `essay_b`, or as prompt blocks marked "a" and "b"); then swapped when the low bit of
    HMAC-SHA256(key, request id) is 1. The bit depends on the request id alone:
    a retry that replays the request (same Idempotency-Key) keeps its order, and replicates
    of one pair, each its own request, get independent orders.
    """
    both_given = essay_fields_given(request) or essay_blocks_given(request)
    if request.essay_order is EssayOrder.AS_SENT or not both_given:
        return PresentationOrder.AS_SENT, False
    bit = hmac.new(key, request_id.bytes, hashlib.sha256).digest()[0] & 1
    return (PresentationOrder.SWAPPED if bit else PresentationOrder.AS_SENT), True


def swap_labels(text: str) -> str:
    """`text` with every "Essay A" and "Essay B" (any of three casings) trading letters.

    Only these labels: "the first essay" is left as written, since which essay it means
    depends on how the model read the prompt.
    """
    return _LABEL.sub(lambda m: f"{m.group(1)} {_OTHER_LETTER[m.group(2)]}", text)


def in_caller_terms(judgement: Judgement, order: PresentationOrder) -> Judgement:
    """The provider's `judgement` of the presented essays, in terms of the caller's essays."""
    if order is PresentationOrder.AS_SENT:
        return judgement
    return judgement.model_copy(
        update={
            "winner": _OTHER_WINNER[judgement.winner],
            "justification": swap_labels(judgement.justification),
        }
    )


class Counterbalancer:
    """Chooses each request's essay order, and counts which position won every fresh
    judgement of a randomized request (the position-bias report and its metric)."""

    def __init__(self, key: bytes, store: PositionBiasStore, metrics: ServiceMetrics) -> None:
        if len(key) < 16:
            raise ValueError("the essay order key must be at least 16 bytes")
        self._key = key
        self._store = store
        self._metrics = metrics
        self._store_down = False

    def presentation(
        self, request: ComparisonRequest, request_id: uuid.UUID
    ) -> tuple[PresentationOrder, bool]:
        """See `choose_presentation`."""
        return choose_presentation(request, request_id, self._key)

    async def observe(self, job: ComparisonJob, presented: Judgement) -> None:
        """Count `presented` (the provider's answer before mapping back) toward the report,
        if `job`'s order was randomized. Never raises for the store: a report that misses a
        judgement is logged and counted, and the caller still gets its answer."""
        if not job.order_randomized:
            return
        self._metrics.presentation_orders.labels(job.presentation_order.value).inc()
        first_won = presented.winner is EssayWinner.ESSAY_A
        self._metrics.record_winner_position(job.provider, presented.model, first_won=first_won)
        try:
            await self._store.record(job.provider, presented.model, first_won=first_won)
        except QueueUnavailableError as exc:
            self._metrics.position_bias_unrecorded.inc()
            if not self._store_down:
                logger.warning("position-bias report misses judgements: %s", exc)
            self._store_down = True
        else:
            self._store_down = False
