"""Settings: environment-aware defaults, every documented name, secrets, and refusals."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from common_core.enums import EnvironmentType, LLMProviderType
from services.llm_provider_service.delivery.host_patterns import is_broad_host_pattern
from services.llm_provider_service.settings import (
    ConfigurationError,
    Settings,
    load_settings,
)
from tests.support.callers import CJ_KEY, DEPLOYED_CALLERS, callers_env, digest, policy
from tests.support.processes import refused_start

ROOT = Path(__file__).resolve().parents[4]
SettingsFactory = Callable[..., Settings]


@pytest.mark.parametrize(
    ("environment", "provider", "persistence"),
    [
        ("development", LLMProviderType.MOCK, False),
        ("testing", LLMProviderType.MOCK, False),
        ("staging", LLMProviderType.ANTHROPIC, True),
        ("production", LLMProviderType.ANTHROPIC, True),
    ],
)
def test_defaults_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    environment: str,
    provider: LLMProviderType,
    persistence: bool,
):
    monkeypatch.setenv("ENVIRONMENT", environment)
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_CALLERS", callers_env(DEPLOYED_CALLERS))

    settings = Settings()

    assert settings.environment is EnvironmentType(environment)
    assert settings.default_provider is provider
    assert settings.queue_persistence is persistence
    assert settings.providers.enable_response_cache is False


@pytest.mark.parametrize(
    ("environment", "log_format"),
    [
        ("development", "console"),  # the README's `pdm run serve` stays readable
        ("testing", "console"),
        ("staging", "json"),
        ("production", "json"),
    ],
)
def test_the_log_format_follows_the_environment_unless_set(
    monkeypatch: pytest.MonkeyPatch, environment: str, log_format: str
):
    monkeypatch.setenv("ENVIRONMENT", environment)
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_CALLERS", callers_env(DEPLOYED_CALLERS))
    assert Settings().resolved_log_format == log_format

    other = "console" if log_format == "json" else "json"
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_LOG_FORMAT", other)
    assert Settings().resolved_log_format == other


def test_an_unknown_log_format_is_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_LOG_FORMAT", "logfmt")

    with pytest.raises(ConfigurationError) as refused:
        load_settings()

    assert str(refused.value).startswith("LLM_PROVIDER_SERVICE_LOG_FORMAT: ")


def test_unset_environment_means_development():
    settings = Settings()

    assert settings.environment is EnvironmentType.DEVELOPMENT
    assert settings.default_provider is LLMProviderType.MOCK
    assert settings.queue_persistence is False
    assert settings.port == 8080


def test_explicit_settings_beat_the_environment_defaults(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_CALLERS", callers_env(DEPLOYED_CALLERS))
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_DEFAULT_LLM_PROVIDER", "openai")

    settings = Settings()

    assert settings.default_provider is LLMProviderType.OPENAI
    # Production refuses the queue in memory when validating, so the explicit `false` is
    # seen there; in development an explicit `true` beats the default the same way.
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_ENABLE_QUEUE_PERSISTENCE", "false")
    with pytest.raises(ConfigurationError, match="ENABLE_QUEUE_PERSISTENCE is off"):
        load_settings()
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_ENABLE_QUEUE_PERSISTENCE", "true")
    assert Settings().queue_persistence is True


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("LLM_PROVIDER_SERVICE_ANTHROPIC_API_KEY", "anthropic_api_key"),
        ("ANTHROPIC_API_KEY", "anthropic_api_key"),
        ("LLM_PROVIDER_SERVICE_OPENAI_API_KEY", "openai_api_key"),
        ("OPENAI_API_KEY", "openai_api_key"),
        ("LLM_PROVIDER_SERVICE_GOOGLE_API_KEY", "google_api_key"),
        ("GOOGLE_API_KEY", "google_api_key"),
        ("GEMINI_API_KEY", "google_api_key"),
        ("LLM_PROVIDER_SERVICE_OPENROUTER_API_KEY", "openrouter_api_key"),
        ("OPENROUTER_API_KEY", "openrouter_api_key"),
    ],
)
def test_api_keys_are_read_from_prefixed_and_vendor_names(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str
):
    monkeypatch.setenv(variable, "sk-test-value")

    settings = Settings()

    key = getattr(settings, field.removesuffix("_api_key")).api_key
    assert isinstance(key, SecretStr)
    assert key.get_secret_value() == "sk-test-value"
    provider = LLMProviderType(field.removesuffix("_api_key"))
    assert settings.provider_settings(provider).configured is True
    others = {"anthropic_api_key", "openai_api_key", "google_api_key", "openrouter_api_key"}
    assert all(
        getattr(settings, other.removesuffix("_api_key")).api_key is None
        for other in others - {field}
    )


def test_api_keys_never_appear_in_repr_str_or_json(monkeypatch: pytest.MonkeyPatch):
    secrets = {
        "ANTHROPIC_API_KEY": "sk-ant-very-secret-1",
        "OPENAI_API_KEY": "sk-oai-very-secret-2",
        "GEMINI_API_KEY": "gem-very-secret-3",
        "LLM_PROVIDER_SERVICE_OPENROUTER_API_KEY": "sk-or-very-secret-4",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)

    settings = Settings()

    renderings = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
        *(repr(settings.provider_settings(p)) for p in LLMProviderType),
    ]
    for text in renderings:
        for secret in secrets.values():
            assert secret not in text
    assert settings.openrouter.api_key is not None
    assert (
        settings.openrouter.api_key.get_secret_value()
        == secrets["LLM_PROVIDER_SERVICE_OPENROUTER_API_KEY"]
    )


@pytest.mark.parametrize("provider", ["anthropic", "openai", "google", "openrouter"])
def test_base_urls_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, provider: str):
    url = f"http://127.0.0.1:9999/{provider}"
    monkeypatch.setenv(f"LLM_PROVIDER_SERVICE_{provider.upper()}_BASE_URL", url)

    settings = Settings()

    assert getattr(settings, provider).base_url == url
    assert settings.provider_settings(LLMProviderType(provider)).base_url == url


@pytest.mark.parametrize(
    ("suffix", "raw", "read"),
    [
        ("PORT", "9090", lambda s: s.port == 9090),
        ("HOST", "0.0.0.0", lambda s: s.host == "0.0.0.0"),
        ("REDIS_URL", "redis://cache:6380/2", lambda s: s.redis.url == "redis://cache:6380/2"),
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            "kafka-1:29092,kafka-2:29092",
            lambda s: s.kafka.bootstrap_servers == "kafka-1:29092,kafka-2:29092",
        ),
        ("USE_MOCK_LLM", "true", lambda s: s.providers.use_mock_llm is True),
        ("ENABLE_RESPONSE_CACHE", "true", lambda s: s.providers.enable_response_cache is True),
        (
            "DEFAULT_LLM_PROVIDER",
            "google",
            lambda s: s.default_provider is LLMProviderType.GOOGLE,
        ),
        ("QUEUE_REQUEST_TTL_SECONDS", "600", lambda s: s.queue.request_ttl_seconds == 600),
        ("QUEUE_MAX_SIZE", "42", lambda s: s.queue.max_size == 42),
    ],
)
def test_documented_settings_are_read_from_prefixed_variables(
    monkeypatch: pytest.MonkeyPatch, suffix: str, raw: str, read: Callable[[Settings], bool]
):
    assert not read(Settings()), "the test value must differ from the default"
    monkeypatch.setenv(f"LLM_PROVIDER_SERVICE_{suffix}", raw)

    assert read(Settings())


def test_testing_defaults_are_consistent(make_settings: SettingsFactory):
    make_settings()
    make_settings(environment="development", enable_response_cache=True)


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_response_cache_is_refused_in_deployed_environments(
    make_settings: SettingsFactory, environment: str
):
    with pytest.raises(ConfigurationError) as refused:
        make_settings(
            environment=environment, anthropic_api_key="sk-test", enable_response_cache=True
        )

    message = str(refused.value)
    assert "LLM_PROVIDER_SERVICE_ENABLE_RESPONSE_CACHE" in message
    assert f"ENVIRONMENT={environment}" in message
    assert "Bradley-Terry" in message
    assert "only in development and testing" in message


@pytest.mark.parametrize(
    "mock_settings",
    [{"default_llm_provider": "mock"}, {"use_mock_llm": True}],
    ids=["default_provider_mock", "use_mock_llm"],
)
def test_mock_is_refused_in_production(
    make_settings: SettingsFactory, mock_settings: dict[str, Any]
):
    with pytest.raises(ConfigurationError, match="mock provider"):
        make_settings(environment="production", anthropic_api_key="sk", **mock_settings)


def test_queue_without_persistence_is_refused_in_production(make_settings: SettingsFactory):
    with pytest.raises(ConfigurationError) as refused:
        make_settings(
            environment="production", anthropic_api_key="sk", enable_queue_persistence=False
        )

    assert "ENABLE_QUEUE_PERSISTENCE is off" in str(refused.value)
    assert "lost on restart" in str(refused.value)


def test_request_ttl_longer_than_the_maximum_is_refused(make_settings: SettingsFactory):
    with pytest.raises(ConfigurationError) as refused:
        make_settings(queue_request_ttl_seconds=7200, queue_max_ttl_seconds=3600)

    message = str(refused.value)
    assert "QUEUE_REQUEST_TTL_SECONDS (7200)" in message
    assert "QUEUE_MAX_TTL_SECONDS (3600)" in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ENVIRONMENT", "prod"), ("LLM_PROVIDER_SERVICE_PORT", "abc")],
)
def test_load_settings_names_the_bad_variable_in_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
):
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigurationError) as refused:
        load_settings()

    message = str(refused.value)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message
    assert refused.value.__cause__ is None


def test_load_settings_names_every_bad_variable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_PORT", "abc")

    with pytest.raises(ConfigurationError) as refused:
        load_settings()

    message = str(refused.value)
    assert "ENVIRONMENT: " in message
    assert "LLM_PROVIDER_SERVICE_PORT: " in message
    assert "\n" not in message


def test_load_settings_translates_unparseable_list_settings(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_CALLBACK_TOPIC_ALLOWLIST", "huleedu.*")

    with pytest.raises(ConfigurationError, match="CALLBACK_TOPIC_ALLOWLIST: not valid JSON"):
        load_settings()


def test_serve_refuses_to_start_with_a_cache_in_production():
    env = {
        **os.environ,
        "ENVIRONMENT": "production",
        "LLM_PROVIDER_SERVICE_ENABLE_RESPONSE_CACHE": "true",
    }

    lines = refused_start(env)

    assert len(lines) == 1, lines
    assert "ENABLE_RESPONSE_CACHE" in lines[0]


def test_kafka_is_on_by_default_only_when_deployed(make_settings: SettingsFactory):
    assert make_settings().uses_kafka is False
    assert make_settings(environment="development").uses_kafka is False
    assert _deployed(make_settings, "production").uses_kafka is True
    assert make_settings(kafka_enabled=True).uses_kafka is True


def test_production_without_kafka_is_refused(make_settings: SettingsFactory):
    with pytest.raises(ConfigurationError, match="KAFKA_ENABLED is off"):
        make_settings(environment="production", anthropic_api_key="sk", kafka_enabled=False)


def test_webhook_hosts_without_a_signing_secret_are_refused(make_settings: SettingsFactory):
    with pytest.raises(ConfigurationError, match="WEBHOOK_SIGNING_SECRET"):
        make_settings(webhook_allowed_hosts=("hooks.example.org",))
    make_settings(webhook_allowed_hosts=("hooks.example.org",), webhook_signing_secret="x" * 16)


def test_a_short_or_blank_signing_secret(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_WEBHOOK_SIGNING_SECRET", "short")
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        load_settings()
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_WEBHOOK_SIGNING_SECRET", "  ")
    assert load_settings().webhooks.signing_secret is None


def test_an_outbox_lease_shorter_than_a_send_is_refused(make_settings: SettingsFactory):
    with pytest.raises(ConfigurationError, match="OUTBOX_LEASE_SECONDS"):
        make_settings(outbox_lease_seconds=15.0, webhook_timeout_seconds=10.0)


def test_the_default_processing_mode_is_read_and_checked(monkeypatch: pytest.MonkeyPatch):
    assert Settings().default_processing_mode == "queue_if_unavailable"
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_DEFAULT_PROCESSING_MODE", "async")
    assert load_settings().default_processing_mode == "async"
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_DEFAULT_PROCESSING_MODE", "later")
    with pytest.raises(ConfigurationError, match="DEFAULT_PROCESSING_MODE"):
        load_settings()


def test_model_prices_take_two_or_five_numbers(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(
        "LLM_PROVIDER_SERVICE_MODEL_PRICES",
        '{"house": [1, 2], "cached-house": [1, 2, 0.1, 1.25, 2]}',
    )
    assert load_settings().providers.model_prices == {
        "house": (1, 2),
        "cached-house": (1, 2, 0.1, 1.25, 2),
    }
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_MODEL_PRICES", '{"odd": [1, 2, 3]}')
    with pytest.raises(ConfigurationError, match=r"MODEL_PRICES: .*odd: a price is"):
        load_settings()


# -- Callers, and what staging and production refuse once anyone can reach the service ------


SECRET = "a-webhook-signing-secret"


def _deployed(make_settings: SettingsFactory, environment: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": environment,
        "anthropic_api_key": "sk",
        "callers": DEPLOYED_CALLERS,
    }
    return make_settings(**(values | overrides))


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_deployed_settings_with_callers_are_accepted(
    make_settings: SettingsFactory, environment: str
):
    _deployed(make_settings, environment)


@pytest.mark.parametrize("environment", ["staging", "production"])
@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"callers": {}}, "no callers are configured"),
        ({"webhook_allow_http": True}, "WEBHOOK_ALLOW_HTTP is on"),
        ({"webhook_allow_private_addresses": True}, "WEBHOOK_ALLOW_PRIVATE_ADDRESSES is on"),
        ({"webhook_allowed_hosts": ("*",), "webhook_signing_secret": SECRET}, "patterns *"),
        ({"webhook_allowed_hosts": ("*.org",), "webhook_signing_secret": SECRET}, "patterns *.org"),
        (
            {"callers": {"cj": policy(CJ_KEY, webhook_hosts=["hooks-*.example.org"])}},
            "hooks-*.example.org (caller cj)",
        ),
        ({"enable_response_cache": True}, "ENABLE_RESPONSE_CACHE is set"),
    ],
    ids=["open", "http", "private", "any_host", "tld", "caller_wildcard", "cache"],
)
def test_deployed_refuses_what_is_unsafe_on_a_network(
    make_settings: SettingsFactory, environment: str, overrides: dict[str, Any], why: str
):
    with pytest.raises(ConfigurationError) as refused:
        _deployed(make_settings, environment, **overrides)

    assert why in str(refused.value)
    assert f"ENVIRONMENT={environment}" in str(refused.value)


def test_development_stays_open_and_permissive(make_settings: SettingsFactory):
    make_settings(
        environment="development",
        webhook_allow_http=True,
        webhook_allow_private_addresses=True,
        webhook_allowed_hosts=("*",),
        webhook_signing_secret=SECRET,
    )


@pytest.mark.parametrize(
    ("pattern", "broad"),
    [
        ("hooks.example.org", False),
        ("*.example.org", False),
        ("*.hooks.example.co.uk", False),
        ("10.1.2.3", False),
        ("*", True),
        ("*.org", True),
        ("hooks-*.example.org", True),
        ("*.*.org", True),
        ("hooks.example.?rg", True),
        ("[a-z].example.org", True),
    ],
)
def test_broad_host_patterns(pattern: str, broad: bool):
    assert is_broad_host_pattern(pattern) is broad


def test_callers_are_read_from_json(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(
        "LLM_PROVIDER_SERVICE_CALLERS",
        callers_env({"cj_assessment": policy(CJ_KEY, max_priority=8, requests_per_minute=600)}),
    )

    caller = Settings().callers["cj_assessment"]

    assert caller.key_sha256 == (digest(CJ_KEY),)
    assert caller.max_priority == 8
    assert caller.requests_per_minute == 600
    assert caller.max_queued is None
    assert caller.admin is False


def test_callers_are_read_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    path = tmp_path / "callers.json"
    path.write_text(callers_env({"ops": {"key_sha256": digest("k"), "admin": True}}))
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_CALLERS_FILE", str(path))

    callers = load_settings().callers

    assert callers["ops"].key_sha256 == (digest("k"),)  # one digest may be a plain string
    assert callers["ops"].admin


@pytest.mark.parametrize(
    ("callers", "expected"),
    [
        ({"cj": {"key_sha256": "abc"}}, "64 characters"),
        ({"cj": {"key_sha256": digest("k").upper()}}, "lower-case hex"),
        ({"cj": {"key_sha256": []}}, "key_sha256"),
        ({"cj": {"key_sha256": digest("k"), "topcs": ["t"]}}, "topcs"),
        ({"cj": {"key_sha256": digest("k"), "max_priority": 11}}, "max_priority"),
        ({"cj": {"key_sha256": digest("k"), "requests_per_minute": 0}}, "requests_per_minute"),
        ({"c/j": {"key_sha256": digest("k")}}, "caller name 'c/j'"),
    ],
    ids=["short", "upper", "no_digest", "typo", "priority", "rate", "name"],
)
def test_bad_callers_are_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, callers: dict[str, Any], expected: str
):
    path = tmp_path / "callers.json"
    path.write_text(callers_env(callers))
    for name, value in (("CALLERS", callers_env(callers)), ("CALLERS_FILE", str(path))):
        monkeypatch.delenv("LLM_PROVIDER_SERVICE_CALLERS", raising=False)
        monkeypatch.delenv("LLM_PROVIDER_SERVICE_CALLERS_FILE", raising=False)
        monkeypatch.setenv(f"LLM_PROVIDER_SERVICE_{name}", value)

        with pytest.raises(ConfigurationError) as refused:
            load_settings()

        message = str(refused.value)
        assert expected in message, name
        assert "\n" not in message
        assert "CALLERS" in message


def test_a_missing_callers_file_and_both_sources_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_CALLERS_FILE", str(tmp_path / "absent.json"))
    with pytest.raises(ConfigurationError, match=r"absent\.json: No such file"):
        load_settings()

    monkeypatch.setenv("LLM_PROVIDER_SERVICE_CALLERS", callers_env(DEPLOYED_CALLERS))
    with pytest.raises(ConfigurationError, match="set CALLERS or CALLERS_FILE, not both"):
        load_settings()


def test_a_caller_topic_outside_the_allow_list_is_refused(make_settings: SettingsFactory):
    with pytest.raises(ConfigurationError) as refused:
        make_settings(callers={"cj": policy(CJ_KEY, topics=["other.results"])})

    assert "caller cj may use topics other.results" in str(refused.value)


def test_serve_refuses_to_start_open_in_production():
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LLM_PROVIDER_SERVICE_")
    }
    env |= {"ENVIRONMENT": "production", "ANTHROPIC_API_KEY": "sk"}

    lines = refused_start(env)

    assert len(lines) == 1, lines
    assert "no callers are configured" in lines[0]


# -- Sections: read under their flat names, validated in one phase ---------------------------


def test_sections_are_read_from_their_flat_environment_names(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_QUEUE_LEASE_SECONDS", "12.5")
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_ENABLE_QUEUE_PERSISTENCE", "true")
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_OTEL_SERVICE_NAME", "llm-a")
    monkeypatch.setenv("GEMINI_API_KEY", "gm-key")
    # Only the documented names: not the section's prefix with the field's name.
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_REDIS_ALLOW_NON_DURABLE", "true")

    settings = Settings()

    assert settings.queue.lease_seconds == 12.5
    assert settings.queue.persistence is True
    assert settings.tracing.service_name == "llm-a"
    assert settings.google.api_key is not None
    assert settings.google.api_key.get_secret_value() == "gm-key"
    assert settings.redis.allow_non_durable is False


def test_a_section_given_in_code_beats_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_QUEUE_MAX_SIZE", "42")

    assert Settings(queue={"max_size": 6}).queue.max_size == 6
    assert Settings(queue_max_size=7).queue.max_size == 7
    assert Settings().queue.max_size == 42


def test_contradicting_settings_cannot_be_built(monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ValueError, match=r"QUEUE_REQUEST_TTL_SECONDS \(7200\) is longer"):
        Settings(queue_request_ttl_seconds=7200, queue_max_ttl_seconds=3600)
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="no callers are configured"):
        Settings()


@pytest.mark.parametrize(
    ("name", "section"),
    [
        ("anthropic_api_key", "anthropic"),
        ("ANTHROPIC_API_KEY", "anthropic"),
        ("LLM_PROVIDER_SERVICE_OPENAI_API_KEY", "openai"),
        ("GEMINI_API_KEY", "google"),
        ("GOOGLE_API_KEY", "google"),
        ("OPENROUTER_API_KEY", "openrouter"),
    ],
)
def test_settings_in_code_take_every_environment_name_of_a_section_field(name: str, section: str):
    # As before sections: a key passed under its vendor's name is the key, not ignored.
    given: dict[str, Any] = {name: "sk-in-code"}
    settings = Settings(**given)

    key = getattr(settings, section).api_key
    assert key is not None
    assert key.get_secret_value() == "sk-in-code"


def test_a_redis_cluster_without_queue_persistence_is_refused():
    with pytest.raises(ValueError, match=r"REDIS_CLUSTER is on but .*ENABLE_QUEUE_PERSISTENCE"):
        Settings(redis_cluster=True, enable_queue_persistence=False)
    assert Settings(redis_cluster=True, enable_queue_persistence=True).redis.cluster is True


@pytest.mark.parametrize(
    ("environment", "workers"),
    [("development", 1), ("testing", 1), ("staging", 6), ("production", 6)],
)
def test_serve_workers_default_to_the_cores_once_deployed(
    monkeypatch: pytest.MonkeyPatch, environment: str, workers: int
):
    monkeypatch.setattr("services.llm_provider_service.settings.service.cpu_cores", lambda: 6)
    monkeypatch.setenv("ENVIRONMENT", environment)
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_CALLERS", callers_env(DEPLOYED_CALLERS))
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_ENABLE_QUEUE_PERSISTENCE", "true")
    assert Settings().serve_worker_count == workers

    monkeypatch.setenv("LLM_PROVIDER_SERVICE_SERVE_WORKERS", "3")
    assert Settings().serve_worker_count == 3


def test_serve_workers_must_be_positive(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LLM_PROVIDER_SERVICE_SERVE_WORKERS", "0")
    with pytest.raises(ConfigurationError, match=r"LLM_PROVIDER_SERVICE_SERVE_WORKERS: "):
        load_settings()


def test_several_serve_processes_with_the_in_memory_queue_are_refused():
    # Each process would hold a private queue: a status poll could reach the wrong one.
    with pytest.raises(ValueError, match=r"SERVE_WORKERS is 2 but .*ENABLE_QUEUE_PERSISTENCE"):
        Settings(serve_workers=2, enable_queue_persistence=False)
    assert Settings(serve_workers=2, enable_queue_persistence=True).serve_worker_count == 2
    assert Settings(serve_workers=1, enable_queue_persistence=False).serve_worker_count == 1
