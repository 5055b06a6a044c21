"""The documentation keeps up with the code.

Every setting's environment variable is in `documentation/configuration.md`; every module
file of the service and every exported metric is in `documentation/architecture.md`, and
every setting and metric of the batch lane in `documentation/batch.md`. The
reverse holds too: the tables name no setting, module or metric that does not exist. Names
are matched in backticks (`` `LLM_PROVIDER_SERVICE_PORT` ``, `` `api/errors.py` ``), so one
name that is a part of another (`errors.py` in `api/errors.py`) does not count for it.
Module files are named by their path relative to `services/llm_provider_service/`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.settings.sections import every_env_name

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "documentation" / "architecture.md"
CONFIGURATION = ROOT / "documentation" / "configuration.md"
PACKAGE = ROOT / "services" / "llm_provider_service"
PREFIX = str(Settings.model_config.get("env_prefix", "")).upper()


SETTINGS = every_env_name(Settings)


def env_names(field: str) -> list[str]:
    """The environment variable names that set `field`, as `Settings` reads them."""
    return SETTINGS[field]


def module_paths() -> list[str]:
    return sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py"))


def exported_metric_names() -> list[str]:
    """Names as Prometheus exports them; counter families drop `_total`, so add it back."""
    names = []
    for family in ServiceMetrics().registry.collect():
        names.append(f"{family.name}_total" if family.type == "counter" else family.name)
    return sorted(names)


def backticked(text: str, name: str) -> bool:
    return f"`{name}`" in text


@pytest.fixture(scope="module")
def architecture() -> str:
    return ARCHITECTURE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def configuration() -> str:
    return CONFIGURATION.read_text(encoding="utf-8")


def test_discovery_finds_what_the_documentation_must_cover() -> None:
    # Guards the parametrized tests below against silently checking nothing.
    assert len(SETTINGS) > 40
    assert {"app.py", "api/errors.py", "queue/memory.py"} <= set(module_paths())
    assert "llm_provider_http_requests_total" in exported_metric_names()


@pytest.mark.parametrize("field", sorted(SETTINGS))
def test_every_setting_is_documented(field: str, configuration: str) -> None:
    missing = [name for name in env_names(field) if not backticked(configuration, name)]
    assert not missing, f"{field}: {missing} not in {CONFIGURATION.name}"


def test_configuration_names_only_real_settings(configuration: str) -> None:
    # With `populate_by_name`, PREFIX + field name is read for aliased fields as well.
    real = {f"{PREFIX}{f.upper()}" for f in SETTINGS}
    real.update(name for f in SETTINGS for name in env_names(f))
    named = set(re.findall(rf"\b{PREFIX}[A-Z0-9_]*[A-Z0-9]", configuration))
    assert named, "no setting found in configuration.md"
    assert not named - real, f"documented but not settings: {sorted(named - real)}"


@pytest.mark.parametrize("module", module_paths())
def test_every_module_is_in_the_architecture(module: str, architecture: str) -> None:
    assert backticked(architecture, module), f"{module} not in {ARCHITECTURE.name}"


def test_module_map_names_only_existing_modules(architecture: str) -> None:
    rows = re.findall(r"^\| `([\w/]+\.py)` \|", architecture, flags=re.MULTILINE)
    assert rows, "no module map rows found"
    assert not set(rows) - set(module_paths()), sorted(set(rows) - set(module_paths()))


@pytest.mark.parametrize("metric", exported_metric_names())
def test_every_metric_is_in_the_architecture(metric: str, architecture: str) -> None:
    assert backticked(architecture, metric), f"{metric} not in {ARCHITECTURE.name}"


def test_metric_table_names_only_registered_metrics(architecture: str) -> None:
    rows = re.findall(r"^\| `(llm_provider_\w+)` \|", architecture, flags=re.MULTILINE)
    assert rows, "no metric table rows found"
    assert not set(rows) - set(exported_metric_names()), sorted(
        set(rows) - set(exported_metric_names())
    )


BATCH_SETTINGS = [*sorted(f for f in SETTINGS if f.startswith("batch_")), "mock_batch_seconds"]
BATCH_METRICS = [m for m in exported_metric_names() if m.startswith("llm_provider_batch_")]


@pytest.fixture(scope="module")
def batch_page() -> str:
    return (ROOT / "documentation" / "batch.md").read_text(encoding="utf-8")


def test_the_batch_lane_has_settings_and_metrics_to_document() -> None:
    # Guards the parametrized tests below against silently checking nothing.
    assert {"batch_providers", "batch_max_wait_seconds", "batch_poll_seconds"} <= set(
        BATCH_SETTINGS
    )
    assert "llm_provider_batch_api_jobs_total" in BATCH_METRICS


@pytest.mark.parametrize("field", BATCH_SETTINGS)
def test_every_batch_setting_is_in_the_batch_page(field: str, batch_page: str) -> None:
    assert backticked(batch_page, field.upper()), f"{field.upper()} not in batch.md"


@pytest.mark.parametrize("metric", BATCH_METRICS)
def test_every_batch_metric_is_in_the_batch_page(metric: str, batch_page: str) -> None:
    assert backticked(batch_page, metric), f"{metric} not in batch.md"
