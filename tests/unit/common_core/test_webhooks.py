"""Webhook signatures: what `sign` writes, `verify` accepts, and nothing else."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from common_core.webhooks import parse, sign, signature, verify

SECRET = b"whsec_test_secret"
BODY = b'{"event_id":"e1","data":{"winner":"Essay A"}}'
T = 1_700_000_000

secrets = st.binary(min_size=1, max_size=64)
bodies = st.binary(max_size=512)
timestamps = st.integers(min_value=0, max_value=10**11)


def test_header_is_t_then_v1_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET, f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()

    assert sign(SECRET, BODY, timestamp=T) == f"t={T},v1={expected}"
    assert signature(SECRET, BODY, timestamp=T) == expected


def test_a_known_vector() -> None:
    # Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac key
    header = sign(b"key", b"{}", timestamp=T)

    assert header == (
        "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
    )
    assert verify(b"key", header, b"{}", now=T)


def test_several_secrets_give_one_v1_each_and_either_verifies() -> None:
    header = sign([b"old-secret", b"new-secret"], BODY, timestamp=T)

    assert header.count("v1=") == 2
    assert verify(b"old-secret", header, BODY, now=T)
    assert verify(b"new-secret", header, BODY, now=T)
    assert not verify(b"other-secret", header, BODY, now=T)


def test_unknown_schemes_are_ignored_and_spacing_is_tolerated() -> None:
    digest = signature(SECRET, BODY, timestamp=T)

    assert verify(SECRET, f"t={T}, v0=abc, v1={digest.upper()}", BODY, now=T)
    assert not verify(SECRET, f"t={T},v0={digest}", BODY, now=T)


@pytest.mark.parametrize(
    ("now", "accepted"),
    [
        (T, True),
        (T + 300, True),
        (T - 300, True),
        (T + 301, False),  # too old
        (T - 301, False),  # from the future
        (T + 10**6, False),
    ],
)
def test_the_timestamp_must_be_within_the_tolerance_either_way(now: float, accepted: bool) -> None:
    assert verify(SECRET, sign(SECRET, BODY, timestamp=T), BODY, now=now) is accepted


def test_tolerance_is_configurable() -> None:
    header = sign(SECRET, BODY, timestamp=T)

    assert verify(SECRET, header, BODY, now=T + 3000, tolerance_seconds=3600)
    assert not verify(SECRET, header, BODY, now=T + 11, tolerance_seconds=10)


def test_now_defaults_to_the_current_time() -> None:
    import time

    assert verify(SECRET, sign(SECRET, BODY, timestamp=int(time.time())), BODY)
    assert not verify(SECRET, sign(SECRET, BODY, timestamp=int(time.time()) - 3600), BODY)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=1700000000",  # no v1
        f"v1={'0' * 64}",  # no t
        f"t=,v1={'0' * 64}",
        f"t=abc,v1={'0' * 64}",
        f"t=-5,v1={'0' * 64}",
        f"t=1.5,v1={'0' * 64}",
        f"t=\u0661\u0667\u0660\u0660,v1={'0' * 64}",  # non-ASCII digits
        f"t={'9' * 5000},v1={'0' * 64}",  # int() would refuse this many digits
        f"t=1,t=2,v1={'0' * 64}",  # two timestamps
        "t=1,v1=abc",  # short digest
        f"t=1,v1={'g' * 64}",  # not hex
        f"t=1,v1={'é' * 64}",  # not ASCII: compare_digest would raise on str
        f"t=1,v1={'0' * 64},junk",
        "=,=,=",
        ",,,",
        "t=1,v1=" + "0" * 5000,
    ],
)
def test_malformed_headers_are_refused(header: str) -> None:
    assert parse(header) is None
    assert verify(SECRET, header, BODY, now=1) is False


def test_an_empty_secret_never_verifies_and_cannot_sign() -> None:
    header = f"t={T},v1={hmac.new(b'', f'{T}.'.encode() + BODY, hashlib.sha256).hexdigest()}"

    assert not verify(b"", header, BODY, now=T)
    with pytest.raises(ValueError, match="empty"):
        sign(b"", BODY, timestamp=T)


@pytest.mark.parametrize("timestamp", [-1, True, 1.5])
def test_sign_refuses_a_timestamp_that_is_not_unix_seconds(timestamp: object) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        sign(SECRET, BODY, timestamp=timestamp)  # type: ignore[arg-type]


@given(secret=secrets, body=bodies, timestamp=timestamps)
def test_property_what_is_signed_verifies(secret: bytes, body: bytes, timestamp: int) -> None:
    assert verify(secret, sign(secret, body, timestamp=timestamp), body, now=timestamp)


@given(secret=secrets, body=bodies.filter(bool), timestamp=timestamps, data=st.data())
def test_property_any_flipped_body_byte_fails(
    secret: bytes, body: bytes, timestamp: int, data: st.DataObject
) -> None:
    header = sign(secret, body, timestamp=timestamp)
    index = data.draw(st.integers(0, len(body) - 1), label="index")
    bit = data.draw(st.integers(0, 7), label="bit")
    tampered = bytearray(body)
    tampered[index] ^= 1 << bit

    assert not verify(secret, header, bytes(tampered), now=timestamp)


@given(secret=secrets, other=secrets, body=bodies, timestamp=timestamps)
def test_property_a_different_secret_fails(
    secret: bytes, other: bytes, body: bytes, timestamp: int
) -> None:
    header = sign(secret, body, timestamp=timestamp)

    assert verify(other, header, body, now=timestamp) is (other == secret)


@given(body=bodies, timestamp=timestamps, extra=st.binary(min_size=1, max_size=8))
def test_property_appended_bytes_fail(body: bytes, timestamp: int, extra: bytes) -> None:
    assert not verify(SECRET, sign(SECRET, body, timestamp=timestamp), body + extra, now=timestamp)


@given(
    timestamp=timestamps,
    skew=st.integers(min_value=301, max_value=10**9),
    future=st.booleans(),
)
def test_property_stale_or_future_timestamps_fail(timestamp: int, skew: int, future: bool) -> None:
    header = sign(SECRET, BODY, timestamp=timestamp)
    now = timestamp - skew if future else timestamp + skew

    assert not verify(SECRET, header, BODY, now=now)


@given(header=st.text(max_size=300))
@example(header="t=1,v1=" + "\x00" * 64)
@example(header="t=" + "9" * 20 + ",v1=" + "a" * 64)
def test_property_arbitrary_headers_never_raise(header: str) -> None:
    assert verify(SECRET, header, BODY, now=T) in (True, False)


@given(
    header=st.lists(
        st.tuples(
            st.sampled_from(["t", "v1", "v0", "", " t", "v1 "]),
            st.text(alphabet="0123456789abcdefABCDEF-. x,=", max_size=70),
        ),
        max_size=5,
    ).map(lambda entries: ",".join(f"{k}={v}" for k, v in entries))
)
def test_property_header_shaped_garbage_never_raises(header: str) -> None:
    assert verify(SECRET, header, BODY, now=T) in (True, False)


@given(secret=secrets, body=bodies, timestamp=timestamps)
def test_property_a_tampered_digest_fails(secret: bytes, body: bytes, timestamp: int) -> None:
    header = sign(secret, body, timestamp=timestamp)
    digest = header.split("v1=")[1]
    flipped = ("1" if digest[0] == "0" else "0") + digest[1:]

    assert not verify(secret, f"t={timestamp},v1={flipped}", body, now=timestamp)
