"""`Progress`: how far a `compare_many` batch has come, reported after each comparison ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Progress:
    """A batch's counts after one more comparison ended.

    `done == succeeded + failed`; `queued` is how many comparisons of the batch (ended or
    not) got a 202 so far, i.e. are waiting or waited in the service's queue.
    """

    total: int
    done: int
    succeeded: int
    failed: int
    queued: int


class ProgressTracker:
    """Counts a batch's 202s and ends, and calls `on_progress` after each end."""

    def __init__(self, total: int, on_progress: Callable[[Progress], None] | None) -> None:
        self._total = total
        self._on_progress = on_progress
        self._succeeded = 0
        self._failed = 0
        self._queued = 0

    def queued(self) -> None:
        """Record that one comparison got a 202."""
        self._queued += 1

    def ended(self, *, succeeded: bool) -> None:
        """Record one comparison's end and report; what `on_progress` raises propagates."""
        if succeeded:
            self._succeeded += 1
        else:
            self._failed += 1
        if self._on_progress is not None:
            self._on_progress(self.snapshot())

    def snapshot(self) -> Progress:
        return Progress(
            total=self._total,
            done=self._succeeded + self._failed,
            succeeded=self._succeeded,
            failed=self._failed,
            queued=self._queued,
        )
