"""A group's run: in which order its targets go, in which waves, and when to
stop starting them (the failure budget).

The budget counts over the whole run, not per wave (Ansible's
max_fail_percentage counts per batch, which lets a bad change reach every
batch's first hosts): once more targets than it allows have ended other than
ok or skipped, no new target starts, and the rest are recorded not_run.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Sequence
from typing import TypeVar

from runbook.model import Strategy
from runbook.outcome import RunOutcome, RunStatus

T = TypeVar("T")

# Ended well: everything else counts against the budget (an unreachable
# target too, counted apart in the summary). A parked run waits for a person.
PASSED = frozenset({RunStatus.OK, RunStatus.SKIPPED, RunStatus.AWAITING_APPROVAL})


def ordered(items: Sequence[T], order: str) -> list[T]:
    """The targets in the order they start: the group's, or shuffled."""
    out = list(items)
    if order == "random":
        random.SystemRandom().shuffle(out)
    return out


def waves(items: Sequence[T], sizes: Sequence[int | str]) -> list[list[T]]:
    """`items` cut into waves of the given sizes (a count, or "10%" of all the
    items, at least one); the last size repeats until every item has a wave."""
    if not sizes:
        return [list(items)] if items else []
    out: list[list[T]] = []
    start, i = 0, 0
    while start < len(items):
        size = _size(sizes[min(i, len(sizes) - 1)], len(items))
        out.append(list(items[start : start + size]))
        start += size
        i += 1
    return out


def _size(size: int | str, total: int) -> int:
    if isinstance(size, str):
        return max(1, math.floor(total * float(size.rstrip("%")) / 100))
    return max(1, size)


class Budget:
    """How many targets may fail before no new one starts; counted as they end,
    from the fan-out's threads."""

    def __init__(self, total: int, strategy: Strategy) -> None:
        self.total = total
        self.allowed: int | None = None
        if strategy.max_failures is not None:
            kind, value = strategy.max_failures
            self.allowed = int(value) if kind == "count" else math.floor(total * value / 100 + 1e-9)
        self.spelt = _spelt(strategy)
        self._lock = threading.Lock()
        self.failed = 0
        self.ended = 0
        self.tripped: str | None = None  # why no new target starts

    def count(self, outcome: RunOutcome) -> str | None:
        """Count a target that ended; why no new target is to start, once spent."""
        with self._lock:
            self.ended += 1
            if outcome.status in PASSED:
                return self.tripped
            self.failed += 1
            if self.allowed is not None and self.failed > self.allowed and self.tripped is None:
                self.tripped = (
                    f"the failure budget ({self.spelt}) was spent: {self.failed} of "
                    f"{self.ended} target(s) ended so far did not pass"
                )
            return self.tripped


def _spelt(strategy: Strategy) -> str:
    if strategy.max_failures is None:
        return "none"
    kind, value = strategy.max_failures
    return f"max_failures: {int(value)}" if kind == "count" else f"max_failures: {value:g}%"
