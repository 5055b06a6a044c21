"""The service's version, for `/metrics` (`llm_provider_build_info`), the OpenAPI document
and the traces' resource: the installed package's, else `[project] version` of the
`pyproject.toml` beside the code (the Docker image installs the dependencies only, without
the package itself, and copies that file), else "unknown"."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

PACKAGE = "llm-provider-service"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def service_version(pyproject: Path = PYPROJECT) -> str:
    """The installed package's version, else `[project] version` of `pyproject`, else
    "unknown"."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return "unknown"
    return str(project.get("version", "unknown"))
