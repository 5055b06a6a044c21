"""Callers: who a bearer key belongs to, and what that caller may see and do."""

from __future__ import annotations

import pytest

from services.llm_provider_service.callers import (
    Caller,
    CallerPolicy,
    Callers,
    may_see,
    require_admin,
)
from services.llm_provider_service.errors import ForbiddenError, UnauthorizedError
from tests.support.callers import digest

CJ = CallerPolicy(key_sha256=(digest("cj-old"), digest("cj-new")), topics=("t.results",))
OPS = CallerPolicy(key_sha256=(digest("ops-key"),), admin=True)
CALLERS = Callers({"cj_assessment": CJ, "ops": OPS})


def test_an_open_service_has_anonymous_callers_whatever_they_send():
    callers = Callers({})

    assert callers.open
    assert callers.authenticate(None) is None
    assert callers.authenticate("Bearer anything") is None


@pytest.mark.parametrize("header", ["Bearer cj-old", "Bearer cj-new", "bearer cj-new"])
def test_every_key_of_a_caller_names_it_during_a_rotation(header: str):
    caller = CALLERS.authenticate(header)

    assert caller is not None
    assert caller.name == "cj_assessment"
    assert caller.policy is CJ
    assert not CALLERS.open


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "no_key"),
        ("", "no_key"),
        ("Basic Y2o6b2xk", "no_key"),
        ("cj-old", "no_key"),
        ("Bearer cj-older", "bad_key"),
        ("Bearer " + digest("cj-old"), "bad_key"),  # the digest itself is not a key
        ("Bearer ", "bad_key"),
    ],
)
def test_a_missing_or_unknown_key_is_unauthorized(header: str | None, reason: str):
    with pytest.raises(UnauthorizedError) as refused:
        CALLERS.authenticate(header)

    assert refused.value.http_status == 401
    assert refused.value.code.value == "UNAUTHORIZED"
    assert refused.value.details == {"reason": reason}
    assert "cj-" not in refused.value.message  # never echoes what was sent


def test_a_request_belongs_to_its_caller_alone():
    cj = Caller("cj_assessment", CJ)
    ops = Caller("ops", OPS)

    assert may_see(cj, "cj_assessment")
    assert not may_see(cj, "ops")
    assert not may_see(cj, None)  # made before callers existed, or while the service was open
    assert not may_see(ops, "cj_assessment"), "admin runs drills; it does not read essays"
    assert may_see(None, "cj_assessment")  # an open service has no owners


def test_provider_tests_and_drills_need_an_admin():
    require_admin(Caller("ops", OPS), "a drill")
    require_admin(None, "a drill")  # an open service

    with pytest.raises(ForbiddenError) as refused:
        require_admin(Caller("cj_assessment", CJ), "a drill")
    assert refused.value.http_status == 403
    assert refused.value.details == {"caller": "cj_assessment"}


def test_topics_are_exact_names_and_hosts_are_patterns():
    caller = Caller(
        "cj_assessment",
        CallerPolicy(
            key_sha256=(digest("k"),),
            topics=("huleedu.llm_provider.comparison_result.v1",),
            webhook_hosts=("*.hooks.example.org", "Results.Example.COM."),
        ),
    )

    assert caller.may_publish_to("huleedu.llm_provider.comparison_result.v1")
    assert not caller.may_publish_to("huleedu.llm_provider.comparison_result.v2")
    assert not caller.may_publish_to("huleedu.llm_provider.*")
    assert caller.may_call_back("a.hooks.example.org")
    assert caller.may_call_back("results.example.com")
    assert not caller.may_call_back("hooks.example.org")
    assert not caller.may_call_back("evil.example.com")
