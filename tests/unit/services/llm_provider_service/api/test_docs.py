"""The pinned documentation assets are the versions their URLs name, and `@documented`
refuses an error status it cannot describe."""

from __future__ import annotations

import pytest

from services.llm_provider_service.api import docs
from services.llm_provider_service.api.openapi import documented


@pytest.mark.parametrize(
    ("bundle", "filename", "marker"),
    [
        (docs.SWAGGER_UI, "swagger-ui-bundle.js", 'PACKAGE_VERSION:"{version}"'),
        (docs.REDOC, "redoc.standalone.js", '" ReDoc Version: ","{version}"'),
    ],
)
def test_each_bundle_is_the_version_its_url_names(bundle: str, filename: str, marker: str):
    version = bundle.rsplit("-", 1)[1]
    text = (docs.BUNDLES[bundle] / filename).read_text(encoding="utf-8")
    assert marker.format(version=version) in text


@pytest.mark.parametrize("bundle", [docs.SWAGGER_UI, docs.REDOC])
def test_each_bundle_ships_its_licence(bundle: str):
    assert (docs.BUNDLES[bundle] / "LICENSE").stat().st_size > 500


def test_an_error_status_without_a_meaning_is_refused():
    with pytest.raises(ValueError, match="418"):
        documented("Brew tea.", errors=(418,))
