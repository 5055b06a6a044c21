"""The operator's pack in `documentation/operations/` cannot drift from the service.

`promtool` checks the alert rules, runs their unit tests and parses every dashboard query;
every metric name that the Grafana dashboard, the alert rules and the rules' tests use is in
the `/metrics` output of the real service (served by Hypercorn, scraped over HTTP); every
alert has a unit test that shows it firing; every runbook link points at an existing heading.

promtool comes from Debian's `prometheus` package (`.ci/run` installs it); without it these
tests fail with a message saying so, never skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from services.llm_provider_service.settings import Settings
from tests.support.served_app import served_app

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "documentation" / "operations"
ALERTS = OPERATIONS / "alerts.yml"
ALERTS_TEST = OPERATIONS / "alerts_test.yml"
DASHBOARD = OPERATIONS / "dashboard.json"
# Series Prometheus makes itself, not the service.
PROMETHEUS_SERIES = frozenset({"up"})
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")
_OUR_NAME = re.compile(r"\b((?:llm_provider|process|python)_[a-z0-9_]+)\b")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
# PromQL words that can stand before `{` only as part of a call, never a metric.
_FUNCTIONS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not installed: `apt-get install -y -qq prometheus` (Debian) "
            "provides /usr/bin/promtool; .ci/run installs it when missing"
        )
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[str]:
        for panel in panels:
            for target in panel.get("targets", []):
                yield target["expr"]
            yield from walk(panel.get("panels", []))

    return list(walk(json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]))


def input_series_names() -> list[str]:
    names = []
    for case in load_yaml(ALERTS_TEST)["tests"]:
        for series in case["input_series"]:
            names.append(series["series"].split("{", 1)[0].strip())
    return names


def metric_names(expression: str) -> set[str]:
    """Metric names in a PromQL expression: selectors (`name{...}`) and bare names of ours;
    string literals (label values such as `job="llm_provider_service"`) left out."""
    bare = _STRING.sub('""', expression)
    names = {name for name in _SELECTOR.findall(bare) if name not in _FUNCTIONS}
    names |= set(_OUR_NAME.findall(bare))
    return names


def used_names() -> dict[str, set[str]]:
    """Each metric name used by the pack, with the files that use it."""
    used: dict[str, set[str]] = {}

    def add(names: set[str] | list[str], where: str) -> None:
        for name in names:
            used.setdefault(name, set()).add(where)

    for expression in dashboard_expressions():
        add(metric_names(expression), DASHBOARD.name)
    for rule in alert_rules():
        add(metric_names(rule["expr"]), ALERTS.name)
    add(input_series_names(), ALERTS_TEST.name)
    return used


def scraped_names(text: str) -> set[str]:
    """Every sample name the exposition can carry, from its families and their types (a
    family with no labelled child yet still has its HELP and TYPE lines)."""
    suffixes: dict[str, tuple[str, ...]] = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


# -- promtool ----------------------------------------------------------------------------------


def test_promtool_checks_the_alert_rules() -> None:
    result = run_promtool("check", "rules", str(ALERTS))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout + result.stderr


def test_promtool_runs_the_alert_rules_unit_tests() -> None:
    result = run_promtool("test", "rules", str(ALERTS_TEST))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses rule expressions; each panel query becomes a recording rule, with
    # Grafana's variables replaced by what Grafana would put there.
    expressions = dashboard_expressions()
    rules = [
        {
            "record": f"dashboard:panel_{n}",
            "expr": e.replace("$__rate_interval", "5m").replace("$job", "llm_provider_service"),
        }
        for n, e in enumerate(expressions)
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = run_promtool("check", "rules", str(path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(expressions)} rules found" in result.stdout + result.stderr


def test_every_alert_is_shown_firing_by_a_unit_test() -> None:
    fired = {
        check["alertname"]
        for case in load_yaml(ALERTS_TEST)["tests"]
        for check in case["alert_rule_test"]
        if check["exp_alerts"]
    }
    alerts = {rule["alert"] for rule in alert_rules()}

    assert len(alerts) >= 10
    assert alerts <= fired, sorted(alerts - fired)


def test_every_alert_has_a_severity_a_summary_and_a_runbook_that_exists() -> None:
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        page = ROOT / path
        assert page.is_file(), f"{rule['alert']}: {path} does not exist"
        assert anchor in heading_anchors(page), f"{rule['alert']}: no heading #{anchor} in {path}"


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors of the page's headings: lower case, punctuation dropped, spaces `-`."""
    anchors = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"#{1,6}\s+(.*)", line):
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_the_dashboard_covers_what_operators_watch() -> None:
    used = set(used_names())
    for needed in (
        "llm_provider_http_requests_total",
        "llm_provider_http_request_duration_seconds_bucket",
        "llm_provider_queue_depth",
        "llm_provider_queue_oldest_age_seconds",
        "llm_provider_outbox_oldest_age_seconds",
        "llm_provider_circuit_breaker_state",
        "llm_provider_events_lost_total",
        "llm_provider_quota_refusals_total",
        "llm_provider_redis_memory_used_ratio",
        "llm_provider_provider_call_duration_seconds_bucket",
        "llm_provider_cost_usd_total",
    ):
        in_dashboard = any(needed in metric_names(e) for e in dashboard_expressions())
        assert in_dashboard, f"{needed} is not on the dashboard"
    assert len(used) > 20


# -- the pack against a real scrape ------------------------------------------------------------


async def test_every_metric_the_pack_uses_is_in_the_real_scrape(
    make_settings: Callable[..., Settings],
) -> None:
    async with (
        served_app(make_settings(worker_enabled=False)) as served,
        httpx.AsyncClient(base_url=served.base_url, timeout=10.0) as http,
    ):
        response = await http.get("/metrics")
    assert response.status_code == 200
    exported = scraped_names(response.text)
    used = used_names()

    missing = {
        name: sorted(where)
        for name, where in used.items()
        if name not in exported and name not in PROMETHEUS_SERIES
    }

    assert "llm_provider_build_info" in exported
    assert "process_cpu_seconds_total" in exported
    assert not missing, f"metric names the service does not export: {missing}"


def test_metric_name_extraction_sees_through_label_values() -> None:
    expression = (
        'sum by (route) (rate(llm_provider_http_requests_total{job="llm_provider_service", '
        'status=~"5.."}[5m])) / on (job) group_left max(up{job="x"}) + process_open_fds'
    )

    assert metric_names(expression) == {
        "llm_provider_http_requests_total",
        "up",
        "process_open_fds",
    }
