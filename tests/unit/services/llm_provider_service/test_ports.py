"""The ports import no adapter: the `protocols` package names only the service's value
types, its errors, its settings and its own modules, so an adapter package can change
without touching a port."""

from __future__ import annotations

import ast
from pathlib import Path

import services.llm_provider_service.protocols as protocols

_PACKAGE = "services.llm_provider_service"
_ALLOWED = {f"{_PACKAGE}.models", f"{_PACKAGE}.errors", f"{_PACKAGE}.settings"}
# The batch lane's values (dataclasses and its three errors) have their own module, as
# `models.py` has the rest: values, no adapter.
_ALLOWED.add(f"{_PACKAGE}.batch.models")
_PORTS = Path(protocols.__file__).parent
# The package's own modules: `__init__.py` gathers the ports of the others.
_ALLOWED |= {f"{_PACKAGE}.protocols.{path.stem}" for path in _PORTS.glob("*.py")}


def _service_imports(source: str) -> list[str]:
    """Every module of the service that `source` imports, at any depth of the file."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [name for name in names if name == _PACKAGE or name.startswith(f"{_PACKAGE}.")]


def test_protocols_import_only_models_errors_and_settings() -> None:
    sources = [path.read_text(encoding="utf-8") for path in sorted(_PORTS.glob("*.py"))]
    imported = [name for source in sources for name in _service_imports(source)]
    assert imported, "the check must see the service's imports in the protocols package"
    assert [name for name in imported if name not in _ALLOWED] == []


def test_the_check_catches_an_adapter_import() -> None:
    source = (
        f"from {_PACKAGE}.models import QueueRecord\n"
        "if True:\n"
        f"    from {_PACKAGE}.idempotency.models import IdempotencyEntry\n"
        f"import {_PACKAGE}.queue.redis_queue\n"
    )
    imported = _service_imports(source)
    assert {name for name in imported if name not in _ALLOWED} == {
        f"{_PACKAGE}.idempotency.models",
        f"{_PACKAGE}.queue.redis_queue",
    }
