"""Who is calling, and what each caller may do.

`CallerPolicy` is one caller's entry in CALLERS (or CALLERS_FILE, read by `read_callers`);
`Callers.authenticate` turns a bearer key into its `Caller`, by the key's SHA-256; a `Caller`
checks a request against its own lists and caps. With no callers configured the service is
open (development and testing only: staging and production refuse to start so), and every
request is anonymous: `Caller` None.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from common_core.enums import ProcessingMode
from services.llm_provider_service.delivery import host_patterns
from services.llm_provider_service.errors import (
    CallerLimitError,
    ForbiddenError,
    UnauthorizedError,
)

_BEARER = "bearer "
_CALLER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class CallerPolicy(BaseModel):
    """What one calling service may do. It authenticates with `Authorization: Bearer <key>`,
    where SHA-256(key), in lower-case hex, is one of `key_sha256` (several during a key
    rotation). `topics` are the exact `callback_topic` names and `webhook_hosts` the
    `callback_url` host patterns it may use; `max_priority` caps its requests' priority;
    `requests_per_minute` and `max_queued` (requests waiting or running at once) are its
    quotas, shared by every replica; `admin` allows provider tests and drills;
    `default_processing_mode` replaces DEFAULT_PROCESSING_MODE for its requests that name no
    mode."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_sha256: tuple[str, ...] = Field(min_length=1)
    topics: tuple[str, ...] = ()
    webhook_hosts: tuple[str, ...] = ()
    max_priority: int = Field(default=10, ge=0, le=10)
    requests_per_minute: int | None = Field(default=None, gt=0)
    max_queued: int | None = Field(default=None, gt=0)
    admin: bool = False
    default_processing_mode: ProcessingMode | None = None

    @field_validator("key_sha256", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("key_sha256")
    @classmethod
    def _digests(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for digest in value:
            if not _SHA256_HEX.fullmatch(digest):
                raise ValueError(
                    "each key_sha256 is the lower-case hex SHA-256 of a key (64 characters)"
                )
        return value


_CALLERS = TypeAdapter(dict[str, CallerPolicy])


def checked_names(callers: dict[str, CallerPolicy]) -> dict[str, CallerPolicy]:
    """`callers`, once every name is 1 to 64 of A-Z a-z 0-9 . _ - (it becomes part of Redis
    keys and of idempotency keys, `<caller>/<key>`); raises `ValueError` otherwise."""
    for name in callers:
        if not _CALLER_NAME.fullmatch(name):
            raise ValueError(f"caller name {name!r}: 1 to 64 of A-Z a-z 0-9 . _ -")
    return callers


def read_callers(path: Path) -> dict[str, CallerPolicy]:
    """The callers in the JSON file at `path`; `ValueError` with one line naming the file and
    every problem (an unreadable file, bad JSON, a bad field or name)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"CALLERS_FILE {path}: {exc.strerror}") from None
    try:
        return checked_names(_CALLERS.validate_json(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise ValueError(f"CALLERS_FILE {path}: {problems}") from None
    except ValueError as exc:
        raise ValueError(f"CALLERS_FILE {path}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: its configured name and policy."""

    name: str
    policy: CallerPolicy

    @property
    def admin(self) -> bool:
        return self.policy.admin

    def may_publish_to(self, topic: str) -> bool:
        """Whether `topic` is one of this caller's own `topics` (exact names)."""
        return topic in self.policy.topics

    def may_call_back(self, host: str) -> bool:
        """Whether `host` (as `WebhookPolicy.target` spells it) matches one of this caller's
        `webhook_hosts`, with the same rules as WEBHOOK_ALLOWED_HOSTS."""
        return host_patterns.matches(host, host_patterns.normalized(self.policy.webhook_hosts))

    def check_priority(self, priority: int) -> None:
        """`CallerLimitError` (422) for a priority above this caller's `max_priority`."""
        cap = self.policy.max_priority
        if priority > cap:
            raise CallerLimitError(
                f"priority {priority} is above caller {self.name}'s max_priority {cap}",
                details={"field": "priority", "limit": cap},
            )

    def check_topic(self, topic: str) -> None:
        """`ForbiddenError` (403) unless `topic` is one of this caller's own."""
        if not self.may_publish_to(topic):
            raise ForbiddenError(
                f"caller {self.name} may not publish to callback_topic {topic!r}",
                details={"field": "callback_topic", "reason": "topic_not_allowed_for_caller"},
            )

    def check_callback_host(self, host: str) -> None:
        """`ForbiddenError` (403) unless `host` matches one of this caller's webhook hosts."""
        if not self.may_call_back(host):
            raise ForbiddenError(
                f"caller {self.name} may not call back host {host!r}",
                details={"field": "callback_url", "reason": "host_not_allowed_for_caller"},
            )


class Callers:
    """The configured callers; `authenticate` turns an Authorization header into one."""

    def __init__(self, policies: Mapping[str, CallerPolicy]) -> None:
        self._digests = [
            (digest.encode(), Caller(name, policy))
            for name, policy in policies.items()
            for digest in policy.key_sha256
        ]

    @property
    def open(self) -> bool:
        """No callers configured: every request is anonymous and may do anything."""
        return not self._digests

    def authenticate(self, authorization: str | None) -> Caller | None:
        """The caller whose key the `Authorization: Bearer <key>` header carries, or None
        when the service is open. Raises `UnauthorizedError` for a missing or malformed
        header and for a key that matches no caller.

        The digest of the presented key is compared with every configured digest in
        constant time and without stopping at a match, so the time taken says nothing about
        which digest, if any, is close.
        """
        if self.open:
            return None
        if authorization is None or not authorization.lower().startswith(_BEARER):
            raise UnauthorizedError(
                "this service needs `Authorization: Bearer <key>`", details={"reason": "no_key"}
            )
        key = authorization[len(_BEARER) :].strip()
        presented = hashlib.sha256(key.encode()).hexdigest().encode()
        found: Caller | None = None
        for digest, caller in self._digests:
            if hmac.compare_digest(digest, presented):
                found = caller
        if found is None:
            raise UnauthorizedError("the key is not one of a caller", details={"reason": "bad_key"})
        return found


def require_admin(caller: Caller | None, what: str) -> None:
    """Raise `ForbiddenError` unless the service is open (`caller` None) or `caller` is an
    admin."""
    if caller is not None and not caller.admin:
        raise ForbiddenError(f"{what} needs an admin caller", details={"caller": caller.name})


def may_see(caller: Caller | None, owner: str | None) -> bool:
    """Whether `caller` may read, watch or cancel a request made by `owner`: in an open
    service anyone, else only the caller that made it (an admin too: being an admin allows
    provider tests and drills, not other callers' essays)."""
    return caller is None or caller.name == owner
