"""What a fanned-out run is doing now, for its live table (runbook.live).

Fed by events from the run's threads (a target started, a step began, a
target ended with its RunOutcome) and read by the table's refresh thread as
a Snapshot. Everything a frame needs is kept as it happens, so a frame costs
O(rows shown), never O(targets): counters by status, the running targets in
the order they started (the first are the slowest: a target's start time
never changes, and the clock only goes forward), and a bounded list of the
latest failures.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from runbook.outcome import RunOutcome, RunStatus

# Not failures: ended well, or skipped by run_on (not_run is counted on its own).
PASSED = (RunStatus.OK, RunStatus.SKIPPED)

# How many failures are kept to show: more than any terminal has rows.
KEEP_FAILURES = 200


@dataclass(frozen=True)
class Running:
    name: str
    started: float  # the board's clock
    step: str = ""  # "3/7 vacuum orders", when the step is known


@dataclass(frozen=True)
class Failure:
    name: str
    status: str
    exit_code: int
    severity: str | None
    reason: str
    duration_ms: float
    at: float  # the board's clock, when it ended


@dataclass(frozen=True)
class Snapshot:
    """One frame's facts, taken under the board's lock."""

    playbook: str
    total: int  # 0 until the first target starts (the run says how many then)
    now: float
    began: float | None  # when the first target started
    counts: dict[str, int]  # ended targets by RunStatus value
    done: int
    running: int
    waiting: int  # not started yet (after the end: never started, `not_run`)
    finished: bool
    slowest: list[Running] = field(default_factory=list)  # the longest running first
    failures: list[Failure] = field(default_factory=list)  # the latest first
    failed: int = 0  # the targets in `failures`, counted all along
    stopped: str = ""  # why targets are left unstarted (the failure budget), once known


class Board:
    """Thread-safe: the run's threads report, the table's thread reads."""

    def __init__(
        self,
        playbook: str,
        total: int = 0,
        clock: Callable[[], float] = time.monotonic,
        keep_failures: int = KEEP_FAILURES,
    ) -> None:
        self.playbook = playbook
        self._clock = clock
        self._lock = threading.Lock()
        self._total = total
        self._began: float | None = None
        self._counts: dict[str, int] = {}
        self._done = 0
        self._failed = 0
        # name -> (start, step): insertion order is start order.
        self._running: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._failures: deque[Failure] = deque(maxlen=keep_failures)
        self._by_thread: dict[int, str] = {}
        self._stopped = ""
        self._finished = False
        self.changed = threading.Event()  # set by every event: the table may redraw early

    def begin(self, playbook: str, total: int) -> None:
        """The run's playbook and how many targets it has, before the first starts."""
        with self._lock:
            self.playbook = playbook
            self._total = total
        self.changed.set()

    def started(self, name: str, total: int | None = None) -> None:
        """`name` begins, in the calling thread; `total`: how many targets the run has."""
        with self._lock:
            now = self._clock()
            if total is not None:
                self._total = total
            if self._began is None:
                self._began = now
            self._running.pop(name, None)
            self._running[name] = (now, "")
            self._by_thread[threading.get_ident()] = name
        self.changed.set()

    def step(self, step: str) -> None:
        """The target of the calling thread began a step (`step`: "3/7 name")."""
        with self._lock:
            name = self._by_thread.get(threading.get_ident())
            if name is None or name not in self._running:
                return
            self._running[name] = (self._running[name][0], step)  # keeps its place
        self.changed.set()

    def ended(self, outcome: RunOutcome) -> None:
        with self._lock:
            now = self._clock()
            if self._began is None:
                self._began = now
            self._running.pop(outcome.target, None)
            status = outcome.status.value
            self._counts[status] = self._counts.get(status, 0) + 1
            self._done += 1
            if outcome.status is RunStatus.NOT_RUN:  # never started: why, not a failure
                self._stopped = self._stopped or outcome.reason
            elif outcome.status not in PASSED:
                self._failed += 1
                self._failures.append(
                    Failure(
                        outcome.target,
                        status,
                        outcome.exit_code,
                        outcome.severity,
                        outcome.reason,
                        outcome.duration_ms,
                        now,
                    )
                )
        self.changed.set()

    def finish(self) -> None:
        """The run is over: targets never started are `not_run`, not waiting
        (and any still running, which only a crash leaves, unfinished)."""
        with self._lock:
            self._finished = True
        self.changed.set()

    def snapshot(self, rows: int, now: float | None = None) -> Snapshot:
        """The facts for a frame showing at most `rows` running targets and
        `rows` failures: O(rows), whatever the number of targets."""
        rows = max(0, rows)
        with self._lock:
            at = self._clock() if now is None else now
            slowest = [
                Running(name, start, step)
                for name, (start, step) in itertools.islice(self._running.items(), rows)
            ]
            failures = list(itertools.islice(reversed(self._failures), rows))
            running = len(self._running)
            return Snapshot(
                playbook=self.playbook,
                total=self._total,
                now=at,
                began=self._began,
                counts=dict(self._counts),
                done=self._done,
                running=running,
                waiting=max(0, self._total - self._done - running),
                finished=self._finished,
                slowest=slowest,
                failures=failures,
                failed=self._failed,
                stopped=self._stopped,
            )
