"""The standard process metrics and the build info are on every app's own registry."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
import tomllib
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.version import service_version

PACKAGE = "llm-provider-service"  # pyproject.toml [project] name
PYPROJECT_FILE = Path(__file__).resolve().parents[4] / "pyproject.toml"


def families(metrics: ServiceMetrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = generate_latest(metrics.registry).decode()
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


def test_build_info_names_the_package_version_and_python() -> None:
    exported = families(ServiceMetrics())

    labels, value = exported["llm_provider_build_info"][0]
    assert value == 1
    assert labels["version"] == importlib.metadata.version(PACKAGE)
    assert labels["python"] == platform.python_version()
    assert labels["implementation"] == platform.python_implementation()


def test_process_and_platform_metrics_are_exported() -> None:
    exported = families(ServiceMetrics())

    assert "python_info" in exported
    if sys.platform.startswith("linux"):  # ProcessCollector reads /proc
        for name in ("process_resident_memory_bytes", "process_start_time_seconds"):
            assert exported[name][0][1] > 0, name
        assert "process_cpu_seconds" in exported
        assert "process_open_fds" in exported


def test_two_apps_in_one_process_do_not_collide() -> None:
    first, second = ServiceMetrics(), ServiceMetrics()

    assert "llm_provider_build_info" in families(first)
    assert "process_start_time_seconds" in families(second) or not sys.platform.startswith("linux")


def test_uninstalled_the_version_comes_from_pyproject(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "llm-provider-service"\nversion = "9.8.7"\n')

    assert service_version(pyproject) == "9.8.7"
    assert service_version(tmp_path / "missing.toml") == "unknown"
    assert service_version() == tomllib.loads(PYPROJECT_FILE.read_text())["project"]["version"]
