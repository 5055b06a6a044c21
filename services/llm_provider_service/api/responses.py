"""JSON responses straight from pydantic models (one serialisation, on the hot path)."""

from __future__ import annotations

from pydantic import BaseModel
from quart import Response


def json_response(
    model: BaseModel, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        model.model_dump_json(), status=status, headers=headers, content_type="application/json"
    )
