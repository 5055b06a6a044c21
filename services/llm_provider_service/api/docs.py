"""The API documentation: `/openapi.json`, Swagger UI at `/docs` and ReDoc at `/redocs`, whose
scripts and styles the service serves itself (pinned copies in `api/static/`, no CDN), so the
pages work without internet."""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Quart, Response, send_from_directory
from quart_schema import QuartSchema, hide
from werkzeug.exceptions import NotFound

from services.llm_provider_service.api.openapi import (
    ServiceOpenAPIProvider,
    service_info,
)

STATIC = Path(__file__).parent / "static"
ASSETS_PREFIX = "/docs-assets"
# The pinned bundles (see api/static/README.md); the version is in the URL, so a new version
# is a new URL and the long cache lifetime below never serves a stale copy.
SWAGGER_UI = "swagger-ui-5.36.0"
REDOC = "redoc-2.5.4"
BUNDLES = {SWAGGER_UI: STATIC / "swagger-ui", REDOC: STATIC / "redoc"}
_SERVED = {".js", ".css"}
CACHE_SECONDS = 365 * 24 * 3600

bp = Blueprint("docs_assets", __name__)


@bp.get(f"{ASSETS_PREFIX}/<bundle>/<filename>")
@hide
async def docs_asset(bundle: str, filename: str) -> Response:
    """A script or stylesheet of the documentation pages, cacheable for a year."""
    directory = BUNDLES.get(bundle)
    if directory is None or Path(filename).suffix not in _SERVED:
        raise NotFound()
    response = await send_from_directory(directory, filename)
    response.cache_control.public = True
    response.cache_control.max_age = CACHE_SECONDS
    response.cache_control.immutable = True
    return response


def register_docs(app: Quart) -> None:
    """Serve the OpenAPI document and its two pages, with their assets from this service."""
    app.config["QUART_SCHEMA_SWAGGER_JS_URL"] = f"{ASSETS_PREFIX}/{SWAGGER_UI}/swagger-ui-bundle.js"
    app.config["QUART_SCHEMA_SWAGGER_CSS_URL"] = f"{ASSETS_PREFIX}/{SWAGGER_UI}/swagger-ui.css"
    app.config["QUART_SCHEMA_REDOC_JS_URL"] = f"{ASSETS_PREFIX}/{REDOC}/redoc.standalone.js"
    QuartSchema(
        app,
        info=service_info(),
        swagger_ui_path="/docs",
        redoc_ui_path="/redocs",
        scalar_ui_path=None,
        openapi_provider_class=ServiceOpenAPIProvider,
    )
    app.register_blueprint(bp)
