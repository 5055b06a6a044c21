"""Static checks of the Dockerfile, .dockerignore and docker-compose.yml.

No Docker engine is needed: the files are parsed and checked against the repository
(paths that are copied, the module that is run, the PDM scripts) and against the
service's `Settings` (every environment variable the compose file sets must be one
the service actually reads), so a renamed module or setting breaks this test.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.llm_provider_service.settings import Settings
from services.llm_provider_service.settings.sections import every_env_name
from tests.support.callers import DEPLOYED_CALLERS, callers_env

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_FILE = ROOT / "docker-compose.yml"
PYPROJECT = ROOT / "pyproject.toml"

SERVICE_MODULE = "services.llm_provider_service"
API = "llm_provider_service"
WORKER = "llm_provider_worker"
APP_SERVICES = (API, WORKER)
PORT = 8080
PROVIDER_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GOOGLE_API_KEY", "OPENROUTER_API_KEY")


# --------------------------------------------------------------------------- Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            tokens = shlex.split(instruction.args)
            if tokens and "=" not in tokens[0]:  # legacy `ENV KEY value with spaces`
                values[tokens[0]] = " ".join(tokens[1:])
                continue
            for token in tokens:
                key, sep, value = token.partition("=")
                assert sep, f"cannot parse ENV token {token!r}"
                values[key] = value
        return values


def _logical_lines(text: str) -> Iterator[str]:
    """Join backslash continuations and drop comments and blank lines, as BuildKit does."""
    buffer = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buffer += stripped[:-1].rstrip() + " "
            continue
        yield buffer + stripped
        buffer = ""
    assert not buffer, "Dockerfile ends inside a line continuation"


def parse_dockerfile(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            tokens = [t for t in instruction.args.split() if not t.startswith("--")]
            name = tokens[2] if len(tokens) >= 3 and tokens[1].upper() == "AS" else None
            stages.append(Stage(base=tokens[0], name=name))
        elif instruction.keyword != "ARG" or stages:  # ARGs before the first FROM
            assert stages, f"{instruction.keyword} before the first FROM"
            stages[-1].instructions.append(instruction)
    return stages


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"not exec (JSON) form: {args}"
    parsed = json.loads(args)
    assert isinstance(parsed, list)
    assert all(isinstance(item, str) for item in parsed)
    return parsed


def copy_parts(instruction: Instruction) -> tuple[dict[str, str], list[str], str]:
    """`COPY [--flag=value ...] src... dest` -> (flags, sources, dest)."""
    tokens = shlex.split(instruction.args)
    flags: dict[str, str] = {}
    while tokens and tokens[0].startswith("--"):
        key, _, value = tokens.pop(0)[2:].partition("=")
        flags[key] = value
    if tokens and tokens[0].startswith("["):
        tokens = exec_form(" ".join(tokens))
    assert len(tokens) >= 2, f"COPY needs a source and a destination: {instruction.args}"
    return flags, tokens[:-1], tokens[-1]


def healthcheck_command(stage: Stage) -> list[str]:
    match = re.fullmatch(r"((?:--\S+\s+)*)CMD\s+(.+)", stage.last("HEALTHCHECK").args)
    assert match, "HEALTHCHECK must be `HEALTHCHECK [options] CMD [...]`"
    return exec_form(match.group(2))


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def pdm_scripts() -> dict[str, Any]:
    with PYPROJECT.open("rb") as file:
        scripts: dict[str, Any] = tomllib.load(file)["tool"]["pdm"]["scripts"]
    return scripts


def script_argv(scripts: Mapping[str, Any], name: str) -> list[str]:
    script = scripts[name]
    return shlex.split(script["cmd"] if isinstance(script, dict) else script)


def test_dockerfile_is_multi_stage_on_python_311_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    for stage in stages:
        assert stage.base == "python:3.11-slim", stage.base
    names = {s.name for s in stages[:-1]}
    venv_copies = [
        copy_parts(i)[0]["from"] for i in stages[-1].all("COPY") if "from" in copy_parts(i)[0]
    ]
    assert venv_copies, "the final stage copies nothing from an earlier stage"
    assert set(venv_copies) <= names


def test_builder_installs_locked_production_dependencies_before_the_source(
    stages: list[Stage],
) -> None:
    builders = [s for s in stages[:-1] if any("pdm install" in i.args for i in s.all("RUN"))]
    assert len(builders) == 1, "exactly one earlier stage runs `pdm install`"
    builder = builders[0]
    runs = [i.args for i in builder.all("RUN")]
    assert any(
        "pip install" in r and "pdm" in r and '"unearth<0.19"' in r and '"hishel[httpx]<2"' in r
        for r in runs
    ), "PDM must be installed with unearth<0.19 and hishel[httpx]<2"
    install = next(r for r in runs if "pdm install" in r)
    for flag in ("--prod", "--frozen-lockfile"):
        assert flag in install
    assert "-G" not in shlex.split(install)
    assert "--dev" not in install

    order = builder.instructions
    install_at = next(n for n, i in enumerate(order) if "pdm install" in i.args)
    first_copy = next(i for i in order if i.keyword == "COPY")
    _, first_sources, _ = copy_parts(first_copy)
    assert {"pyproject.toml", "pdm.lock", "README.md"} <= set(first_sources)
    assert order.index(first_copy) < install_at
    for instruction in order[:install_at]:
        if instruction.keyword == "COPY":
            _, sources, _ = copy_parts(instruction)
            assert not {"services", "common_core", "."} & {s.rstrip("/") for s in sources}, (
                "source copied before the dependency install defeats layer caching"
            )


def test_final_stage_has_only_the_venv_and_the_source(final: Stage) -> None:
    sources: set[str] = set()
    for instruction in final.all("COPY") + final.all("ADD"):
        flags, srcs, _ = copy_parts(instruction)
        if "from" not in flags:
            sources.update(s.rstrip("/") for s in srcs)
    assert {"services", "common_core"} <= sources
    assert not sources & {".", "tests", ".venv", ".git", "pdm.lock"}, sources
    assert not any("pdm" in i.args.split() for i in final.all("RUN")), "no PDM at runtime"


def test_final_stage_runs_as_a_fixed_non_root_user(final: Stage) -> None:
    user = final.last("USER").args.split(":")[0].strip()
    assert user not in {"root", "0", ""}
    assert user.isdigit(), "a numeric uid lets Kubernetes verify runAsNonRoot"
    assert any(f"--uid {user}" in i.args for i in final.all("RUN")), (
        f"uid {user} is not created with useradd in the final stage"
    )


def test_final_stage_environment(final: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    env = final.env()
    assert env["ENVIRONMENT"] == "production"
    assert env["LLM_PROVIDER_SERVICE_HOST"] == "0.0.0.0"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"

    image = {k: v for k, v in env.items() if is_setting(k)}
    # Production refuses to run open: the deployment adds the callers to the image's settings.
    callers = {"LLM_PROVIDER_SERVICE_CALLERS": callers_env(DEPLOYED_CALLERS)}
    settings = settings_from(monkeypatch, image | callers)
    assert settings.environment.value == "production"
    assert settings.host == "0.0.0.0"
    assert settings.port == PORT


def test_expose_and_stop_signal(final: Stage) -> None:
    exposed = {p.split("/")[0] for i in final.all("EXPOSE") for p in i.args.split()}
    assert str(PORT) in exposed
    assert final.last("STOPSIGNAL").args == "SIGTERM"


def test_cmd_is_exec_form_serve(final: Stage, pdm_scripts: dict[str, Any]) -> None:
    command = exec_form(final.last("CMD").args)
    assert command == ["python", "-m", SERVICE_MODULE, "serve"]
    assert command == script_argv(pdm_scripts, "serve"), "CMD and `pdm run serve` disagree"
    for entrypoint in final.all("ENTRYPOINT"):
        exec_form(entrypoint.args)  # a shell-form ENTRYPOINT would swallow SIGTERM


def test_cmd_module_is_a_package_in_the_repo() -> None:
    package = ROOT.joinpath(*SERVICE_MODULE.split("."))
    assert (package / "__init__.py").is_file()


def test_cmd_module_is_runnable_with_serve_and_worker() -> None:
    main = ROOT.joinpath(*SERVICE_MODULE.split("."), "__main__.py")
    assert main.is_file(), f"`python -m {SERVICE_MODULE}` needs {main.relative_to(ROOT)}"
    text = main.read_text(encoding="utf-8")
    assert "serve" in text
    assert "worker" in text


def test_every_copy_source_exists_and_is_not_dockerignored(stages: list[Stage]) -> None:
    checked = 0
    for stage in stages:
        for instruction in stage.all("COPY") + stage.all("ADD"):
            flags, sources, _ = copy_parts(instruction)
            if "from" in flags:
                continue
            for source in sources:
                matches = list(ROOT.glob(source.rstrip("/")))
                assert matches, f"COPY source {source!r} does not exist in the repository"
                for path in matches:
                    relative = path.relative_to(ROOT).as_posix()
                    assert not dockerignored(relative), f"{relative} is in .dockerignore"
                    for module in path.rglob("*.py") if path.is_dir() else []:
                        if "__pycache__" not in module.parts:
                            inner = module.relative_to(ROOT).as_posix()
                            assert not dockerignored(inner), f"{inner} is in .dockerignore"
                checked += 1
    assert checked >= 5  # pyproject.toml, pdm.lock, README.md, services, common_core


# ------------------------------------------------------------------------ .dockerignore


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip().strip("/"))
        rules.append((negated, _glob_to_regex(pattern)))
    return rules


def dockerignored(path: str) -> bool:
    """Docker semantics: last matching rule wins; a matched directory hides its contents."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negated, regex in _dockerignore_rules():
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


def test_dockerignore_keeps_tests_environments_and_secrets_out() -> None:
    for path in (".git", ".venv", "tests", "tests/unit/test_deployment_files.py", ".env"):
        assert dockerignored(path), f"{path} would be sent to the Docker build"
    assert dockerignored("services/llm_provider_service/__pycache__/settings.cpython-311.pyc")
    assert dockerignored("docs/architecture.md")
    assert not dockerignored("README.md")
    assert not dockerignored("services/llm_provider_service/settings.py")


def test_final_stage_has_the_project_file_for_the_build_version(final: Stage) -> None:
    # The project is not installed in the image (--no-self): `llm_provider_build_info` reads
    # its version from /app/pyproject.toml (version.py `service_version`).
    copied = [copy_parts(i) for i in final.all("COPY") if "from" not in copy_parts(i)[0]]
    assert any(
        "pyproject.toml" in sources and dest in {"/app/pyproject.toml", "/app/", "."}
        for _, sources, dest in copied
    ), copied


# ----------------------------------------------------------------------- healthcheck run


class _Health(BaseHTTPRequestHandler):
    """`/livez` answers `status`; `/healthz` and `/readyz` answer 503 (an outage of a
    dependency must not fail the container's liveness check); anything else 404."""

    status = 200

    def do_GET(self) -> None:
        codes = {"/livez": self.status, "/healthz": 503, "/readyz": 503}
        code = codes.get(self.path, 404)
        body = json.dumps({"status": "alive" if code == 200 else "unhealthy"}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_healthcheck_command_reports_the_livez_status(
    final: Stage, status: int, healthy: bool
) -> None:
    command = healthcheck_command(final)
    assert command[:2] == ["python", "-c"], "slim has no curl: use Python's urllib"
    code = command[2]
    ast.parse(code)
    assert "/livez" in code
    assert "urllib" in code
    assert "127.0.0.1" in code

    handler = type("Handler", (_Health,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env["LLM_PROVIDER_SERVICE_PORT"] = str(server.server_address[1])
        env["http_proxy"] = env["HTTP_PROXY"] = "http://127.0.0.1:9"  # must be bypassed
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, timeout=30, check=False
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert (result.returncode == 0) is healthy, result.stderr.decode(errors="replace")


# ------------------------------------------------------------------------------ compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: Any) -> str | None:
    """Compose interpolation with an empty host environment: `${X:-d}` -> d, `${X}` -> ""."""
    if value is None:
        return None  # `KEY:` passes KEY through from the host, or leaves it unset
    if isinstance(value, bool):
        return str(value).lower()
    return _INTERPOLATION.sub(lambda m: m.group(3) if m.group(2) in ("-", ":-") else "", str(value))


def environment(service: Mapping[str, Any]) -> dict[str, str | None]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    return {str(k): interpolate(v) for k, v in raw.items()}


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def command_tokens(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def settings_env_names() -> set[str]:
    """Every environment variable name `Settings` reads (upper-cased; it is case-insensitive)."""
    return {name for names in every_env_name(Settings).values() for name in names}


def is_setting(name: str) -> bool:
    return name.upper() in settings_env_names()


def settings_from(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str | None]) -> Settings:
    names = settings_env_names()
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    for key in list(os.environ):
        if key.upper() in names or key.upper().startswith(prefix):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if value is not None:
            monkeypatch.setenv(key, value)
    return Settings()


def test_compose_has_the_services_and_no_obsolete_version(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    assert "version" not in compose
    assert {API, WORKER, "redis", "kafka"} <= set(services)
    for name, service in services.items():
        assert "zookeeper" not in name.lower()
        assert "zookeeper" not in str(service.get("image", "")).lower()


def test_every_depends_on_target_exists_and_infrastructure_is_healthy_first(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for target in depends_on(service):
            assert target in services, f"{name} depends on unknown service {target}"
    for name in APP_SERVICES:
        needs = depends_on(services[name])
        assert needs.get("redis") == "service_healthy", name
        assert needs.get("kafka") == "service_healthy", name


def test_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_redis_persists_with_aof_and_never_evicts(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    redis = services["redis"]
    assert str(redis["image"]).startswith("redis:7")
    tokens = command_tokens(redis)
    options = dict(zip(tokens[1::2], tokens[2::2], strict=False)) if tokens else {}
    assert tokens
    assert tokens[0] == "redis-server"
    assert options.get("--appendonly") == "yes"
    assert options.get("--maxmemory-policy") == "noeviction"
    data_mounts = [str(v).split(":") for v in redis.get("volumes") or []]
    assert any(m[1] == "/data" and m[0] in (compose.get("volumes") or {}) for m in data_mounts)
    test = redis["healthcheck"]["test"]
    assert "redis-cli" in " ".join(test)
    assert "ping" in " ".join(test)


def test_kafka_is_a_single_kraft_node(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    env = environment(kafka)
    assert not any("ZOOKEEPER" in key for key in env)
    roles = {r.strip() for r in (env.get("KAFKA_PROCESS_ROLES") or "").split(",")}
    assert {"broker", "controller"} <= roles
    node_id = env.get("KAFKA_NODE_ID")
    assert node_id
    assert env.get("CLUSTER_ID"), "the apache/kafka image refuses KRaft without CLUSTER_ID"
    voters = env.get("KAFKA_CONTROLLER_QUORUM_VOTERS") or ""
    assert voters.startswith(f"{node_id}@kafka:")
    controller = env.get("KAFKA_CONTROLLER_LISTENER_NAMES") or ""
    assert controller
    assert f"{controller}://" in (env.get("KAFKA_LISTENERS") or "")
    advertised = env.get("KAFKA_ADVERTISED_LISTENERS") or ""
    assert "://kafka:9092" in advertised
    test = " ".join(kafka["healthcheck"]["test"])
    assert re.search(r"kafka-(topics|broker-api-versions)(\.sh)?\b", test)

    for name in APP_SERVICES:
        bootstrap = environment(services[name])["LLM_PROVIDER_SERVICE_KAFKA_BOOTSTRAP_SERVERS"]
        assert bootstrap, f"{name} has no Kafka bootstrap servers"
        assert f"://{bootstrap}" in advertised, f"{name} cannot reach Kafka at {bootstrap}"


def test_app_services_use_only_real_settings(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        env = environment(services[name])
        unknown = {key for key in env if not is_setting(key)}
        assert not unknown, f"{name} sets variables Settings does not read: {sorted(unknown)}"
        for key in (
            "ENVIRONMENT",
            "LLM_PROVIDER_SERVICE_REDIS_URL",
            "LLM_PROVIDER_SERVICE_KAFKA_BOOTSTRAP_SERVERS",
            "LLM_PROVIDER_SERVICE_ENABLE_QUEUE_PERSISTENCE",
            "LLM_PROVIDER_SERVICE_WORKER_ENABLED",
            *PROVIDER_KEYS,
        ):
            assert key in env, f"{name} does not set {key}"


def test_provider_keys_pass_through_without_an_empty_default(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`${KEY:-}` would set "" when the host has no key, and "" counts as a configured key."""
    for name in APP_SERVICES:
        env = environment(services[name])
        for key in PROVIDER_KEYS:
            assert env[key] is None, f"{name}: {key} resolves to {env[key]!r} without a host key"
        settings = settings_from(monkeypatch, env)
        assert settings.anthropic.api_key is None


@pytest.mark.parametrize(("name", "worker_enabled"), [(API, False), (WORKER, True)])
def test_app_environment_parses_into_settings(
    services: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    worker_enabled: bool,
) -> None:
    settings = settings_from(monkeypatch, environment(services[name]))
    assert settings.environment.value == "development"
    assert settings.queue_persistence is True
    assert settings.redis.url.startswith("redis://redis:6379")
    assert settings.kafka.bootstrap_servers.split(":")[0] == "kafka"
    assert settings.uses_kafka is True, "the stack has a broker: events must go to it"
    assert settings.kafka.enable_idempotence is True  # real Kafka supports it
    assert settings.worker.enabled is worker_enabled
    if name == API:
        assert settings.host == "0.0.0.0"
        assert settings.port == PORT


def test_api_publishes_port_8080(services: dict[str, dict[str, Any]]) -> None:
    targets = set()
    for port in services[API].get("ports") or []:
        if isinstance(port, dict):
            targets.add((int(port["published"]), int(port["target"])))
        else:
            published, target = str(port).split(":")[-2:]
            targets.add((int(published), int(target.split("/")[0])))
    assert (PORT, PORT) in targets


def test_worker_runs_the_same_image_with_the_worker_command(
    services: dict[str, dict[str, Any]], pdm_scripts: dict[str, Any]
) -> None:
    api, worker = services[API], services[WORKER]
    assert api.get("build")
    assert worker.get("build") == api.get("build")
    assert worker.get("image") == api.get("image")
    assert command_tokens(worker) == ["python", "-m", SERVICE_MODULE, "worker"]
    assert command_tokens(worker) == script_argv(pdm_scripts, "worker")
    assert not command_tokens(api), "the API runs the image's CMD (serve)"
    assert not worker.get("ports"), "the worker serves no HTTP"
