"""Callers for tests: keys, their digests, and the CALLERS policies that name them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

RESULT_TOPIC = "huleedu.llm_provider.comparison_result.v1"


def digest(key: str) -> str:
    """What CALLERS holds for `key`: its SHA-256 in lower-case hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def policy(key: str, **fields: Any) -> dict[str, Any]:
    """One caller's policy for `key`, the result topic allowed; `fields` override."""
    return {"key_sha256": [digest(key)], "topics": [RESULT_TOPIC], **fields}


# A deployed service must name its callers; this is the smallest such list.
CJ_KEY = "cj-assessment-test-key"
DEPLOYED_CALLERS: dict[str, Any] = {"cj_assessment": policy(CJ_KEY)}


def callers_env(callers: dict[str, Any]) -> str:
    """The value of LLM_PROVIDER_SERVICE_CALLERS for `callers`."""
    return json.dumps(callers)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
