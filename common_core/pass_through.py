"""`PassThrough`: the fields a caller sends for itself, carried unchanged to its result."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field


class PassThrough(BaseModel):
    """What the service never reads but gives back: declared once, here.

    `ComparisonRequest` and `ComparisonResult` inherit these fields, so each is a request
    field and a field of the 200 body and of the status `result`, under the same name; the
    result event (`common_core.events.ComparisonResultData`) gets them from the request
    (`event_fields`). A new pass-through field is one field here, its docs and its tests.
    """

    # Event names that differ from the field's name (v1's event called it so).
    EVENT_NAMES: ClassVar[dict[str, str]] = {"metadata": "request_metadata"}

    metadata: dict[str, Any] = Field(default_factory=dict)

    def passed_through(self) -> PassThrough:
        """These fields alone, of a request or a result."""
        return PassThrough.model_validate({name: getattr(self, name) for name in _NAMES})

    def event_fields(self, prompt_sha256: str) -> dict[str, Any]:
        """These fields as the result event's `data` names them: `metadata` as
        `request_metadata`, with the service's `prompt_sha256` beside the caller's keys;
        every other field under its own name."""
        fields = {self.EVENT_NAMES.get(name, name): getattr(self, name) for name in _NAMES}
        fields["request_metadata"] = {**self.metadata, "prompt_sha256": prompt_sha256}
        return fields


_NAMES = tuple(PassThrough.model_fields)
