"""Which callback URLs the webhook policy accepts, and why it refuses the others."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from pydantic import SecretStr

from common_core.enums import ErrorCode
from services.llm_provider_service.delivery.webhook_policy import (
    WebhookPolicy,
    WebhookRefused,
    is_public_address,
)
from services.llm_provider_service.errors import CallbackNotAllowedError
from services.llm_provider_service.settings import Settings, WebhookSettings

POLICY = WebhookPolicy(
    WebhookSettings(allowed_hosts=("hooks.example.com", "*.partner.io", "203.0.113.*", "*"))
)
STRICT = WebhookPolicy(WebhookSettings(allowed_hosts=("hooks.example.com", "*.partner.io")))


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/llm",
        "https://HOOKS.Example.COM/llm?x=1#frag",
        "https://hooks.example.com.:8443/llm",
        "https://a.partner.io/",
        "https://deep.a.partner.io/hook",
        "https://8.8.8.8/hook",
        "https://[2606:4700::1111]:443/hook",
        "https://[::ffff:8.8.8.8]/hook",
    ],
)
def test_allowed_urls_pass(url: str) -> None:
    POLICY.check_url(url)


@pytest.mark.parametrize(
    ("policy", "url", "reason"),
    [
        (POLICY, "", "invalid_url"),
        (POLICY, "hooks.example.com/llm", "invalid_url"),
        (POLICY, "/relative/path", "invalid_url"),
        (POLICY, "https://", "invalid_url"),
        (POLICY, "https:///path", "invalid_url"),
        (POLICY, "https://hooks.example.com:99999/", "invalid_url"),
        (POLICY, "https://hooks.example.com:abc/", "invalid_url"),
        (POLICY, "https://hooks.example.com:0/", "invalid_url"),
        (POLICY, "https://[::1/", "invalid_url"),
        (POLICY, "https://hooks example.com/", "invalid_url"),
        (POLICY, "https://hooks.exa\tmple.com/", "invalid_url"),
        (POLICY, "https://hooks.example.com/\r\nX-Injected: 1", "invalid_url"),
        (POLICY, "https://hööks.example.com/", "invalid_url"),
        (POLICY, "https://hooks%2eexample.com/", "invalid_url"),
        (POLICY, "https://" + "a" * 2048 + ".com/", "invalid_url"),
        (POLICY, "mailto:ops@example.com", "scheme_not_allowed"),
        (POLICY, "http://hooks.example.com/llm", "scheme_not_allowed"),
        (POLICY, "ftp://hooks.example.com/llm", "scheme_not_allowed"),
        (POLICY, "file:///etc/passwd", "scheme_not_allowed"),
        (POLICY, "javascript://hooks.example.com/%0aalert(1)", "scheme_not_allowed"),
        (POLICY, "https://user:pw@hooks.example.com/", "userinfo_not_allowed"),
        (POLICY, "https://user@hooks.example.com/", "userinfo_not_allowed"),
        (POLICY, "https://hooks.example.com@evil.com/", "userinfo_not_allowed"),
        (STRICT, "https://evil.com/", "host_not_allowed"),
        (STRICT, "https://hooks.example.com.evil.com/", "host_not_allowed"),
        (STRICT, "https://evilhooks.example.com/", "host_not_allowed"),
        (STRICT, "https://partner.io/", "host_not_allowed"),  # *.partner.io wants a subdomain
        (STRICT, "https://8.8.8.8/", "host_not_allowed"),
        (WebhookPolicy(), "https://hooks.example.com/", "host_not_allowed"),
        (POLICY, "https://127.0.0.1/", "address_not_allowed"),
        (POLICY, "https://127.1/", "address_not_allowed"),  # legacy spellings of loopback
        (POLICY, "https://2130706433/", "address_not_allowed"),
        (POLICY, "https://0x7f.0.0.1/", "address_not_allowed"),
        (POLICY, "https://10.0.0.5/", "address_not_allowed"),
        (POLICY, "https://172.16.3.4/", "address_not_allowed"),
        (POLICY, "https://192.168.1.1/", "address_not_allowed"),
        (POLICY, "https://169.254.169.254/latest/meta-data", "address_not_allowed"),
        (POLICY, "https://100.64.0.1/", "address_not_allowed"),  # shared (CGNAT)
        (POLICY, "https://0.0.0.0/", "address_not_allowed"),
        (POLICY, "https://224.0.0.1/", "address_not_allowed"),
        (POLICY, "https://240.0.0.1/", "address_not_allowed"),  # reserved
        (POLICY, "https://203.0.113.7/", "address_not_allowed"),  # TEST-NET-3, not global
        (POLICY, "https://[::1]/", "address_not_allowed"),
        (POLICY, "https://[::]/", "address_not_allowed"),
        (POLICY, "https://[fe80::1]/", "address_not_allowed"),
        (POLICY, "https://[fc00::1]/", "address_not_allowed"),
        (POLICY, "https://[ff02::1]/", "address_not_allowed"),
        (POLICY, "https://[::ffff:127.0.0.1]/", "address_not_allowed"),
        (POLICY, "https://[::ffff:169.254.169.254]/", "address_not_allowed"),
        (POLICY, "https://[2002:7f00:1::]/", "address_not_allowed"),  # 6to4 of 127.0.0.1
        (POLICY, "https://[64:ff9b::a00:1]/", "address_not_allowed"),  # NAT64 of 10.0.0.1
    ],
)
def test_refused_urls_say_why(policy: WebhookPolicy, url: str, reason: str) -> None:
    with pytest.raises(CallbackNotAllowedError) as caught:
        policy.check_url(url)

    assert caught.value.details == {"field": "callback_url", "reason": reason}
    assert caught.value.code is ErrorCode.CALLBACK_NOT_ALLOWED
    assert caught.value.http_status == 400
    assert caught.value.message.startswith("callback_url ")


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/llm",
        "http://127.0.0.1:8080/hook",
        "https://[::1]:8443/hook",
        "https://10.0.0.5/",
        "http://localhost/hook",
    ],
)
def test_http_and_private_addresses_pass_when_allowed(url: str) -> None:
    WebhookPolicy(
        WebhookSettings(allowed_hosts=("*",), allow_http=True, allow_private_addresses=True)
    ).check_url(url)


def test_private_addresses_still_need_an_allowed_host() -> None:
    policy = WebhookPolicy(
        WebhookSettings(allowed_hosts=("hooks.example.com",), allow_private_addresses=True)
    )

    with pytest.raises(CallbackNotAllowedError) as caught:
        policy.check_url("https://10.0.0.5/")

    assert caught.value.details["reason"] == "host_not_allowed"


def test_patterns_are_case_insensitive_and_trimmed() -> None:
    policy = WebhookPolicy(
        WebhookSettings(allowed_hosts=(" Hooks.Example.COM. ", "", "*.Partner.IO"))
    )

    assert policy.allowed_hosts == ("hooks.example.com", "*.partner.io")
    policy.check_url("https://hooks.example.com/")
    policy.check_url("https://X.partner.io/")


def test_an_ip_host_is_matched_in_its_canonical_spelling() -> None:
    policy = WebhookPolicy(
        WebhookSettings(allowed_hosts=("127.0.0.1", "::1"), allow_private_addresses=True)
    )

    policy.check_url("https://2130706433/")
    policy.check_url("https://[0:0:0:0:0:0:0:1]/")


def test_target_reads_host_port_and_address() -> None:
    target = POLICY.target("https://HOOKS.example.com./x")
    assert (target.scheme, target.host, target.port, target.address) == (
        "https",
        "hooks.example.com",
        443,
        None,
    )

    lenient = WebhookPolicy(
        WebhookSettings(allowed_hosts=("*",), allow_http=True, allow_private_addresses=True)
    )
    target = lenient.target("http://[::1]:8080/x")
    assert (target.host, target.port, str(target.address)) == ("::1", 8080, "::1")
    assert lenient.target("http://h.example/").port == 80


def test_the_policy_takes_its_section_of_the_settings() -> None:
    settings = Settings(
        environment="testing",
        webhook_allowed_hosts=("Hooks.Example.com",),
        webhook_allow_http=True,
        webhook_allow_private_addresses=True,
        webhook_signing_secret=SecretStr("s" * 32),
    )

    assert WebhookPolicy(settings.webhooks) == WebhookPolicy(
        WebhookSettings(
            allowed_hosts=("hooks.example.com",), allow_http=True, allow_private_addresses=True
        )
    )
    assert WebhookPolicy(Settings(environment="testing").webhooks) == WebhookPolicy()


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("::ffff:10.1.2.3", False),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    import ipaddress

    assert is_public_address(ipaddress.ip_address(address)) is public


# ---- resolve_and_check (delivery time) ---------------------------------------------------


def fake_getaddrinfo(answers: dict[str, list[str]]) -> Any:
    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in answers[host]
        ]

    return getaddrinfo


@pytest.fixture
async def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    answers: dict[str, list[str]] = {}
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake_getaddrinfo(answers))
    return answers


async def test_a_host_with_only_public_addresses_passes(dns: dict[str, list[str]]) -> None:
    dns["hooks.example.com"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]

    await STRICT.resolve_and_check("hooks.example.com", 443)


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["93.184.216.34", "10.0.0.7"],  # one private address among public ones is enough
        ["93.184.216.34", "::1"],
        ["::ffff:169.254.169.254"],
        ["fe80::1%eth0"],
    ],
)
async def test_any_disallowed_address_refuses_the_host(
    dns: dict[str, list[str]], addresses: list[str]
) -> None:
    dns["rebind.example.com"] = addresses

    with pytest.raises(WebhookRefused) as caught:
        await STRICT.resolve_and_check("rebind.example.com", 443)

    assert caught.value.reason == "address_not_allowed"
    assert "rebind.example.com" in caught.value.message


async def test_a_failed_lookup_raises_oserror_not_refused(dns: dict[str, list[str]]) -> None:
    with pytest.raises(OSError, match="not known"):
        await STRICT.resolve_and_check("nowhere.example.com", 443)


async def test_private_addresses_allowed_skips_the_lookup(dns: dict[str, list[str]]) -> None:
    lenient = WebhookPolicy(WebhookSettings(allowed_hosts=("*",), allow_private_addresses=True))

    await lenient.resolve_and_check("nowhere.example.com", 443)  # not resolved, so no error


async def test_real_resolution_of_loopback_names_is_refused() -> None:
    for host in ("localhost", "127.0.0.1", "2130706433"):
        with pytest.raises(WebhookRefused):
            await STRICT.resolve_and_check(host, 80)


# ---- checked_addresses (what the connection is pinned to) -------------------------------


async def test_checked_addresses_are_resolved_once_in_order_without_repeats(
    dns: dict[str, list[str]],
) -> None:
    dns["hooks.example.com"] = ["93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"]

    found = await STRICT.checked_addresses("hooks.example.com", 443)

    assert [str(a) for a in found] == ["93.184.216.34", "2606:2800:220:1::1"]


async def test_checked_addresses_of_an_ip_literal_need_no_lookup(
    dns: dict[str, list[str]],
) -> None:
    assert [str(a) for a in await POLICY.checked_addresses("8.8.8.8", 443)] == ["8.8.8.8"]
    with pytest.raises(WebhookRefused):
        await STRICT.checked_addresses("127.0.0.1", 443)


async def test_checked_addresses_with_private_allowed_still_resolve_and_pin(
    dns: dict[str, list[str]],
) -> None:
    lenient = WebhookPolicy(WebhookSettings(allowed_hosts=("*",), allow_private_addresses=True))
    dns["internal.example.com"] = ["10.0.0.7"]

    assert [str(a) for a in await lenient.checked_addresses("internal.example.com", 80)] == [
        "10.0.0.7"
    ]
    with pytest.raises(OSError, match="not known"):
        await lenient.checked_addresses("nowhere.example.com", 80)
