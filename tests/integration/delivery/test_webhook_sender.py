"""WebhookSender against a real local HTTP receiver: signing, outcomes, redirects, refusals."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from common_core.webhooks import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    parse,
    verify,
)
from services.llm_provider_service.delivery.pinned_client import USER_AGENT, build_client
from services.llm_provider_service.delivery.webhook import (
    MAX_RESPONSE_BYTES,
    OutcomeKind,
    WebhookOutcome,
    WebhookSender,
)
from services.llm_provider_service.delivery.webhook_policy import WebhookPolicy
from services.llm_provider_service.settings import WebhookSettings
from tests.support.redis_server import free_port
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver_fixture  # noqa: F401

SECRET = b"whsec_integration_secret_0123456789"
BODY = json.dumps({"event_id": "evt-1", "data": {"winner": "Essay A"}}).encode()
LOCAL = WebhookPolicy(
    WebhookSettings(
        allowed_hosts=("127.0.0.1", "localhost"), allow_http=True, allow_private_addresses=True
    )
)


@pytest.fixture
async def sender() -> AsyncIterator[WebhookSender]:
    async with build_client() as client:
        yield WebhookSender(client, LOCAL, SECRET, timeout_seconds=2.0)


async def send(sender: WebhookSender, url: str, body: bytes = BODY) -> WebhookOutcome:
    return await sender.send(url, body, event_id="evt-1", event_type="llm.request.completed")


async def test_a_2xx_is_delivered_signed_with_the_event_headers(
    sender: WebhookSender, webhook_receiver: WebhookReceiver
) -> None:
    outcome = await send(sender, webhook_receiver.url("/hook"))

    assert outcome == WebhookOutcome(OutcomeKind.DELIVERED, 200)
    assert outcome.delivered
    [request] = webhook_receiver.requests
    assert (request.method, request.path, request.body) == ("POST", "/hook", BODY)
    assert request.header("content-type") == "application/json"
    assert request.header("user-agent") == USER_AGENT
    assert request.header(EVENT_ID_HEADER) == "evt-1"
    assert request.header(EVENT_TYPE_HEADER) == "llm.request.completed"
    assert webhook_receiver.verified_bodies(SECRET) == [BODY]
    assert webhook_receiver.verified_bodies(b"another-secret") == []
    signature = request.header(SIGNATURE_HEADER)
    assert signature is not None
    parsed = parse(signature)
    assert parsed is not None
    assert abs(parsed[0] - time.time()) < 5


async def test_the_signature_uses_the_senders_clock(
    webhook_receiver: WebhookReceiver,
) -> None:
    async with WebhookSender(
        None, LOCAL, SECRET, timeout_seconds=2.0, clock=lambda: 1_700_000_000.7
    ) as sender:
        assert (await send(sender, webhook_receiver.url())).delivered

    header = webhook_receiver.requests[0].header(SIGNATURE_HEADER) or ""
    assert header.startswith("t=1700000000,v1=")
    assert verify(SECRET, header, BODY, now=1_700_000_000)
    assert not verify(SECRET, header, BODY)  # far older than the tolerance today
    assert webhook_receiver.verified_bodies(SECRET) == []


async def test_keep_alive_serves_several_deliveries(
    sender: WebhookSender, webhook_receiver: WebhookReceiver
) -> None:
    bodies = [json.dumps({"n": n}).encode() for n in range(5)]
    for body in bodies:
        assert (await send(sender, webhook_receiver.url(), body)).delivered

    await webhook_receiver.wait_for(5, successful=True)
    assert webhook_receiver.verified_bodies(SECRET) == bodies


@pytest.mark.parametrize("status", [201, 202, 204])
async def test_any_2xx_is_delivered(
    sender: WebhookSender, webhook_receiver: WebhookReceiver, status: int
) -> None:
    webhook_receiver.respond_next(status=status, body=b"")

    assert await send(sender, webhook_receiver.url()) == WebhookOutcome(
        OutcomeKind.DELIVERED, status
    )


@pytest.mark.parametrize("status", [500, 502, 504, 408, 425, 429])
async def test_server_errors_and_throttling_are_retried(
    sender: WebhookSender, webhook_receiver: WebhookReceiver, status: int
) -> None:
    webhook_receiver.fail_next(status=status, body=b"busy, come back later")

    outcome = await send(sender, webhook_receiver.url())

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.status_code == status
    assert outcome.error == f"receiver answered {status}: busy, come back later"
    assert outcome.retry_after is None


async def test_a_503_with_retry_after_carries_the_wait(
    sender: WebhookSender, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.fail_next(status=503, headers={"Retry-After": "7"})
    webhook_receiver.fail_next(status=429, headers={"Retry-After": "1.5"})
    webhook_receiver.fail_next(status=503, headers={"Retry-After": "soon"})

    first = await send(sender, webhook_receiver.url())
    second = await send(sender, webhook_receiver.url())
    third = await send(sender, webhook_receiver.url())
    fourth = await send(sender, webhook_receiver.url())

    assert (first.kind, first.status_code, first.retry_after) == (OutcomeKind.RETRY, 503, 7.0)
    assert (second.kind, second.status_code, second.retry_after) == (OutcomeKind.RETRY, 429, 1.5)
    assert (third.kind, third.retry_after) == (OutcomeKind.RETRY, None)
    assert fourth.delivered
    assert len(webhook_receiver.requests) == 4


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
async def test_other_4xx_are_rejected(
    sender: WebhookSender, webhook_receiver: WebhookReceiver, status: int
) -> None:
    webhook_receiver.fail_next(status=status, body=b'{"error":"no such hook"}')

    outcome = await send(sender, webhook_receiver.url())

    assert outcome.kind is OutcomeKind.REJECTED
    assert outcome.status_code == status
    assert outcome.error == f'receiver answered {status}: {{"error":"no such hook"}}'


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_rejected_and_not_followed(
    sender: WebhookSender, webhook_receiver: WebhookReceiver, status: int
) -> None:
    webhook_receiver.redirect_next(webhook_receiver.url("/elsewhere"), status=status)

    outcome = await send(sender, webhook_receiver.url("/hook"))

    assert outcome == WebhookOutcome(OutcomeKind.REJECTED, status, "redirect not followed")
    assert [r.path for r in webhook_receiver.requests] == ["/hook"]


async def test_a_client_that_follows_redirects_still_does_not(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.redirect_next(webhook_receiver.url("/elsewhere"))
    async with httpx.AsyncClient(follow_redirects=True) as client:
        sender = WebhookSender(client, LOCAL, SECRET, timeout_seconds=2.0)
        outcome = await send(sender, webhook_receiver.url("/hook"))
        await sender.close()  # the caller's client stays open
        assert not client.is_closed

    assert outcome.kind is OutcomeKind.REJECTED
    assert [r.path for r in webhook_receiver.requests] == ["/hook"]


async def test_a_receiver_slower_than_the_timeout_is_retried(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.delay_next(10.0)
    async with WebhookSender(None, LOCAL, SECRET, timeout_seconds=0.3) as sender:
        started = time.monotonic()
        outcome = await send(sender, webhook_receiver.url())
        elapsed = time.monotonic() - started

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.status_code is None
    assert outcome.error == "no answer within 0.3 s"
    assert elapsed < 2.0
    assert len(webhook_receiver.requests) == 1
    assert webhook_receiver.successful == []


async def test_a_closed_port_is_retried(sender: WebhookSender) -> None:
    outcome = await send(sender, f"http://127.0.0.1:{free_port()}/hook")

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.status_code is None
    assert outcome.error is not None
    assert outcome.error.startswith("cannot reach receiver")


async def test_an_unresolvable_host_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_such_name(host: str, port: int, **_: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_such_name)
    policy = WebhookPolicy(WebhookSettings(allowed_hosts=("*.example.com",), allow_http=True))
    async with WebhookSender(None, policy, SECRET, timeout_seconds=2.0) as sender:
        outcome = await send(sender, "http://gone.example.com/hook")

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.error == "cannot reach receiver: [Errno -2] Name or service not known"


async def test_a_huge_answer_is_not_read_whole(
    sender: WebhookSender, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.fail_next(status=500, body=b"x" * (8 * 1024 * 1024))

    outcome = await send(sender, webhook_receiver.url())

    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.error is not None
    assert len(outcome.error) <= 500
    assert MAX_RESPONSE_BYTES < 8 * 1024 * 1024
    assert (await send(sender, webhook_receiver.url())).delivered  # the pool recovers


async def test_loopback_is_refused_at_resolve_time_unless_private_addresses_are_allowed(
    webhook_receiver: WebhookReceiver,
) -> None:
    url = webhook_receiver.url("/hook", host="localhost")
    strict = WebhookPolicy(WebhookSettings(allowed_hosts=("localhost",), allow_http=True))
    strict.check_url(url)  # a name passes at submission: no DNS then

    async with WebhookSender(None, strict, SECRET, timeout_seconds=2.0) as sender:
        refused = await send(sender, url)
    assert refused.kind is OutcomeKind.REJECTED
    assert refused.status_code is None
    assert refused.error is not None
    assert "localhost resolves to" in refused.error
    assert webhook_receiver.requests == []

    lenient = WebhookPolicy(
        WebhookSettings(allowed_hosts=("localhost",), allow_http=True, allow_private_addresses=True)
    )
    async with WebhookSender(None, lenient, SECRET, timeout_seconds=2.0) as sender:
        allowed = await send(sender, url)
    assert allowed.delivered
    assert webhook_receiver.verified_bodies(SECRET) == [BODY]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/hook", "is not a public address"),
        ("https://hooks.example.com/hook", "is not an allowed callback host"),
        ("ftp://127.0.0.1:{port}/hook", "must use https or http"),
    ],
)
async def test_a_url_the_policy_refuses_is_rejected_without_a_request(
    webhook_receiver: WebhookReceiver, url: str, reason: str
) -> None:
    policy = WebhookPolicy(WebhookSettings(allowed_hosts=("127.0.0.1",), allow_http=True))
    async with WebhookSender(None, policy, SECRET, timeout_seconds=2.0) as sender:
        outcome = await send(sender, url.format(port=webhook_receiver.port))

    assert outcome.kind is OutcomeKind.REJECTED
    assert outcome.error is not None
    assert reason in outcome.error
    assert webhook_receiver.requests == []


async def test_bad_event_headers_are_a_caller_bug(sender: WebhookSender) -> None:
    with pytest.raises(ValueError, match="event_id"):
        await sender.send("http://127.0.0.1/hook", BODY, event_id="a\r\nb", event_type="x")


async def test_the_sender_closes_only_a_client_it_built() -> None:
    owned = WebhookSender(None, LOCAL, SECRET, timeout_seconds=1.0)
    await owned.close()
    assert owned._client.is_closed

    async with build_client() as client:
        borrowed = WebhookSender(client, LOCAL, SECRET, timeout_seconds=1.0)
        await borrowed.close()
        assert not client.is_closed


async def test_proxy_environment_variables_are_ignored(
    monkeypatch: pytest.MonkeyPatch, webhook_receiver: WebhookReceiver
) -> None:
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    async with WebhookSender(None, LOCAL, SECRET, timeout_seconds=2.0) as sender:
        outcome = await send(sender, webhook_receiver.url())

    assert outcome.delivered
    assert len(webhook_receiver.requests) == 1


async def test_wait_for_times_out_with_what_arrived(webhook_receiver: WebhookReceiver) -> None:
    with pytest.raises(TimeoutError, match="for 1 requests, got 0"):
        await webhook_receiver.wait_for(1, timeout=0.05)


# ---- the connection goes to the address that was checked (DNS rebinding) ------------------

PUBLIC_DECOY = "93.184.216.34"
"""A public address the checked answer names; the test refuses to connect to it, so no packet
leaves the machine."""


@pytest.fixture
async def rebinding_dns(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[dict[str, list[list[str]]], list[str]]:
    """A resolver (the running loop's getaddrinfo, which the policy and anyio both use) that
    gives each name its scripted answers in turn, the last one from then on; IP literals
    resolve to themselves. Returns the script and the names looked up, in order."""
    script: dict[str, list[list[str]]] = {}
    lookups: list[str] = []

    async def getaddrinfo(host: str | bytes, port: int, **_: object) -> list[object]:
        host = host.decode() if isinstance(host, bytes) else host  # anyio passes IDNA bytes
        if host in script:
            lookups.append(host)
            answers = script[host]
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        else:
            addresses = [host]  # an IP literal
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    return script, lookups


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connect httpcore makes, by the host it was asked to connect to; a connect to
    PUBLIC_DECOY fails at once (unreachable) instead of leaving the machine."""
    import anyio

    made: list[tuple[str, int]] = []
    real = anyio.connect_tcp

    async def connect_tcp(remote_host: str, remote_port: int, **kwargs: object) -> object:
        made.append((remote_host, remote_port))
        if remote_host == PUBLIC_DECOY:
            raise OSError(101, "Network is unreachable (test)")
        return await real(remote_host, remote_port, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(anyio, "connect_tcp", connect_tcp)
    return made


async def test_a_second_dns_answer_cannot_redirect_the_connection(
    webhook_receiver: WebhookReceiver,
    rebinding_dns: tuple[dict[str, list[list[str]]], list[str]],
    connects: list[tuple[str, int]],
) -> None:
    """TTL-0 rebinding: the name answers a public address when checked and loopback after.
    The sender resolves once and connects to the checked address; loopback is never tried."""
    script, lookups = rebinding_dns
    script["hooks.example.com"] = [[PUBLIC_DECOY], ["127.0.0.1"]]
    strict = WebhookPolicy(WebhookSettings(allowed_hosts=("hooks.example.com",), allow_http=True))
    url = f"http://hooks.example.com:{webhook_receiver.port}/hook"

    async with WebhookSender(None, strict, SECRET, timeout_seconds=2.0) as sender:
        outcome = await send(sender, url)

    assert webhook_receiver.requests == []
    assert lookups == ["hooks.example.com"]
    assert connects == [(PUBLIC_DECOY, webhook_receiver.port)]
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.error is not None
    assert outcome.error.startswith("cannot reach receiver")


async def test_a_pinned_connection_keeps_the_host_name(
    webhook_receiver: WebhookReceiver,
    rebinding_dns: tuple[dict[str, list[list[str]]], list[str]],
    connects: list[tuple[str, int]],
) -> None:
    """Connected to the checked IP, the request still names the host (Host header; and the
    TLS server name, which httpcore takes from the same URL host)."""
    script, lookups = rebinding_dns
    script["hooks.example.com"] = [["127.0.0.1"], [PUBLIC_DECOY]]
    lenient = WebhookPolicy(
        WebhookSettings(
            allowed_hosts=("hooks.example.com",), allow_http=True, allow_private_addresses=True
        )
    )
    url = f"http://hooks.example.com:{webhook_receiver.port}/hook"

    async with WebhookSender(None, lenient, SECRET, timeout_seconds=2.0) as sender:
        outcome = await send(sender, url)

    assert outcome.delivered
    assert lookups == ["hooks.example.com"]
    assert connects == [("127.0.0.1", webhook_receiver.port)]
    [request] = webhook_receiver.requests
    assert request.header("host") == f"hooks.example.com:{webhook_receiver.port}"
    assert webhook_receiver.verified_bodies(SECRET) == [BODY]


async def test_a_client_from_build_client_never_connects_to_an_unchecked_name(
    webhook_receiver: WebhookReceiver,
) -> None:
    """The pinning is in the client's transport: used outside `WebhookSender.send`, it refuses
    to resolve a name itself."""
    async with build_client() as client:
        with pytest.raises(httpx.ConnectError, match="not checked"):
            await client.post(webhook_receiver.url(host="localhost"), content=b"{}")

    assert webhook_receiver.requests == []
