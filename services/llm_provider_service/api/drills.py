"""`POST /api/v1/dev/mock-fault`: outage drills against the mock provider (development only)."""

from __future__ import annotations

from dishka import FromDishka
from pydantic import BaseModel, Field
from quart import Blueprint, Response
from quart_dishka import inject
from quart_schema import document_request, document_response

from services.llm_provider_service.api.auth import current_caller
from services.llm_provider_service.api.openapi import BODY_ERRORS, documented
from services.llm_provider_service.api.parsing import parse_json_body
from services.llm_provider_service.api.responses import json_response
from services.llm_provider_service.callers import require_admin
from services.llm_provider_service.protocols import FaultInjection
from services.llm_provider_service.settings import MockErrorKind

bp = Blueprint("drills", __name__, url_prefix="/api/v1/dev")


class MockFault(BaseModel):
    error_rate: float = Field(ge=0.0, le=1.0)
    error_kind: MockErrorKind = "server_error"


@bp.post("/mock-fault")
@document_request(MockFault)
@document_response(MockFault, 200)
@documented(
    "Make the mock provider fail a share of its calls (development and testing only).",
    authenticated=True,
    errors=(*BODY_ERRORS, 403),
)
@inject
async def set_mock_fault(injector: FromDishka[FaultInjection]) -> Response:
    """Make the mock provider fail this share of calls; registered only in development and
    testing, so staging and production answer 404. Admin callers only."""
    require_admin(current_caller(), "a fault drill")
    fault = await parse_json_body(MockFault)
    injector.set_fault(fault.error_rate, fault.error_kind)
    return json_response(fault)
