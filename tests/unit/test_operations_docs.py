"""The operator's pages in `documentation/operations/` name only real settings and error codes,
index every page, and are linked from the top README.

A setting is named in full (`LLM_PROVIDER_SERVICE_QUEUE_MAX_SIZE`) or, as the other pages do,
without the prefix in backticks (`QUEUE_MAX_SIZE`); the alert rules name them bare in their
descriptions. Each must be a field of `Settings` (or one of its aliases, such as
`ANTHROPIC_API_KEY`); an upper-case name that is not a setting must be an `ErrorCode`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common_core.enums import ErrorCode
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.settings.sections import every_env_name

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "documentation" / "operations"
PREFIX = str(Settings.model_config.get("env_prefix", "")).upper()
PAGES = sorted(OPERATIONS.glob("*.md"))
_FULL = re.compile(rf"{PREFIX}([A-Z0-9_]*[A-Z0-9])(?![A-Za-z0-9_<])")
_BACKTICKED = re.compile(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`")
_BARE = re.compile(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b")


def setting_names() -> set[str]:
    """Every environment variable name that sets a field, prefixed, plus the bare field."""
    names: set[str] = set()
    for field, env_names in every_env_name(Settings).items():
        names.add(field.upper())
        names.update(env_names)
    return names


SETTINGS = setting_names()
CODES = {code.value for code in ErrorCode}


def unknown_full_names(text: str) -> list[str]:
    return sorted({f"{PREFIX}{name}" for name in _FULL.findall(text) if name not in SETTINGS})


def unknown_bare_names(names: list[str]) -> list[str]:
    return sorted({n for n in names if not n.startswith(PREFIX) and n not in SETTINGS | CODES})


def test_there_are_pages_to_check() -> None:
    names = {page.name for page in PAGES}
    assert {
        "README.md",
        "runbook-provider-outage.md",
        "runbook-redis.md",
        "runbook-kafka.md",
        "migration-guide.md",
        "tuning.md",
    } <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_setting_a_page_names_exists(page: Path) -> None:
    text = page.read_text(encoding="utf-8")

    assert not unknown_full_names(text), f"{page.name}: {unknown_full_names(text)}"
    bare = _BACKTICKED.findall(text)
    assert not unknown_bare_names(bare), f"{page.name}: {unknown_bare_names(bare)}"


def test_every_setting_and_code_the_alert_rules_name_exists() -> None:
    text = (OPERATIONS / "alerts.yml").read_text(encoding="utf-8")
    descriptions = "\n".join(re.findall(r"(?:summary|description): (.*)", text))

    assert not unknown_full_names(descriptions)
    assert not unknown_bare_names(_BARE.findall(descriptions)), unknown_bare_names(
        _BARE.findall(descriptions)
    )


def test_the_tuning_guide_names_the_settings_that_matter() -> None:
    text = (OPERATIONS / "tuning.md").read_text(encoding="utf-8")
    for field in (
        "worker_concurrency_per_provider",
        "anthropic_max_concurrency",
        "anthropic_timeout_seconds",
        "queue_max_size",
        "queue_result_max_bytes",
        "outbox_send_concurrency",
        "kafka_send_timeout_seconds",
        "redis_max_connections",
    ):
        assert f"{PREFIX}{field.upper()}" in text, field


def test_the_index_lists_every_file_and_the_readme_links_it() -> None:
    index = (OPERATIONS / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([\w.-]+)` \|", index, flags=re.MULTILINE))
    present = {p.name for p in OPERATIONS.iterdir() if p.name != "README.md"}

    assert listed == present
    assert "documentation/operations/README.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_checker_catches_a_made_up_setting() -> None:
    assert unknown_full_names(f"`{PREFIX}QUEUE_MAX_SIZES`") == [f"{PREFIX}QUEUE_MAX_SIZES"]
    assert unknown_full_names(f"`{PREFIX}<PROVIDER>_MAX_CONCURRENCY`") == []
    assert unknown_bare_names(["QUEUE_MAX_SIZE", "QUEUE_FULL", "QUEUE_SIZE_MAX"]) == [
        "QUEUE_SIZE_MAX"
    ]
