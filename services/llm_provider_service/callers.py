"""Who is calling: the configured callers, authenticated by the SHA-256 of their bearer key.

With no callers configured the service is open (development and testing only: staging and
production refuse to start so), and every request is anonymous: `Caller` None.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from services.llm_provider_service.errors import ForbiddenError, UnauthorizedError
from services.llm_provider_service.settings import CallerPolicy

_BEARER = "bearer "


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
        patterns = (p.strip().lower().rstrip(".") for p in self.policy.webhook_hosts)
        return any(fnmatch.fnmatchcase(host, p) for p in patterns if p)


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
        presented = hashlib.sha256(authorization[len(_BEARER) :].strip().encode()).hexdigest()
        found: Caller | None = None
        for digest, caller in self._digests:
            if hmac.compare_digest(digest, presented.encode()):
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
