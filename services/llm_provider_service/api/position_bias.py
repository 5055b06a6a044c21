"""`GET /api/v1/position-bias`: how often each model preferred the essay shown first."""

from __future__ import annotations

from dishka import FromDishka
from quart import Blueprint, Response
from quart_dishka import inject
from quart_schema import document_response

from common_core.api_models import PositionBiasReport
from services.llm_provider_service.api.openapi import documented
from services.llm_provider_service.api.responses import json_response
from services.llm_provider_service.position_bias.report import build_report
from services.llm_provider_service.protocols import PositionBiasStore

bp = Blueprint("position_bias", __name__, url_prefix="/api/v1")


@bp.get("/position-bias")
@document_response(PositionBiasReport, 200)
@documented(
    "How often each model preferred the essay shown first.", authenticated=True, errors=(503,)
)
@inject
async def position_bias(store: FromDishka[PositionBiasStore]) -> Response:
    """First-position wins per provider and model, over requests whose essay order the
    service randomized: the share, its 95% Wilson interval and the exact two-sided binomial
    p-value against 0.5. Counted since the store began (shared by every replica when the
    queue is in Redis); 503 QUEUE_UNAVAILABLE while Redis cannot be reached."""
    return json_response(build_report(await store.counts()))
