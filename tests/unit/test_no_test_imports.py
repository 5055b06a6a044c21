"""Benchmarks, demos and the development servers import no test code: what they share with
the tests lives in `devtools/`, so `tests/` can change without breaking a benchmark."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("benchmarks", "demos", "devtools")


def _files() -> list[Path]:
    return sorted(path for folder in CHECKED for path in (ROOT / folder).rglob("*.py"))


def _test_imports(source: str) -> list[str]:
    """Every import of `tests` or `tests.*` in `source`, at any depth of the file."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            names.append(node.module)
            if node.module == "tests":
                names.extend(f"tests.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [name for name in names if name == "tests" or name.startswith("tests.")]


def test_discovery_finds_the_benchmarks_demos_and_devtools() -> None:
    # Guards the parametrized test below against silently checking nothing.
    found = {path.relative_to(ROOT).as_posix() for path in _files()}
    assert {
        "benchmarks/result_delivery.py",
        "benchmarks/request_path.py",
        "devtools/webhook_receiver.py",
    } <= found
    assert any(name.startswith("demos/") for name in found)


@pytest.mark.parametrize("path", _files(), ids=lambda path: path.relative_to(ROOT).as_posix())
def test_imports_no_test_code(path: Path) -> None:
    assert _test_imports(path.read_text(encoding="utf-8")) == []


def test_the_check_catches_every_form_of_test_import() -> None:
    source = (
        "from tests.support.redis_server import RedisServer\n"
        "def late():\n"
        "    import tests.support.kafka_broker\n"
        "    from tests import conftest\n"
        "from . import tests\n"
        "import testsuite\n"
        "from devtools.redis_server import RedisServer\n"
    )
    assert _test_imports(source) == [
        "tests.support.redis_server",
        "tests.support.kafka_broker",
        "tests",
        "tests.conftest",
    ]
