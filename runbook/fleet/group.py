"""A group's run, the parts of it that are not one target's: which targets
(--limit), how their questions and output are shared, the journal
connection their notifiers share, and the fan-out with the strategy's waves
and failure budget. runbook.service.run puts them together."""

from __future__ import annotations

import difflib
import fnmatch
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from runbook.context import Prompter
from runbook.engine import Reporter
from runbook.errors import UsageError
from runbook.fleet.fanout import Fanout, Sessions
from runbook.fleet.strategy import Budget, ordered, waves
from runbook.journal.records import IncidentRecord
from runbook.journal.store import JournalStore, StoreConfig, open_store
from runbook.model import Strategy, Target
from runbook.outcome import RunOutcome


def limited(targets: list[Target], patterns: tuple[str, ...]) -> list[Target]:
    """--limit: the targets whose names match a pattern (globs; "!glob" leaves
    out; several patterns given apart or with commas). A pattern that matches
    none of them is a typo, said so: a mistyped exclusion would run where the
    operator meant it not to."""
    wanted = [p.strip() for given in patterns for p in given.split(",") if p.strip()]
    if not wanted:
        return targets
    names = [t.name for t in targets]
    for pattern in wanted:
        if not any(fnmatch.fnmatchcase(n, pattern.removeprefix("!")) for n in names):
            near = difflib.get_close_matches(pattern.removeprefix("!"), names, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise UsageError(f"--limit {pattern!r} matches no target here{hint}")
    take = [p for p in wanted if not p.startswith("!")]
    leave = [p[1:] for p in wanted if p.startswith("!")]
    out = [
        t
        for t in targets
        if (not take or any(fnmatch.fnmatchcase(t.name, p) for p in take))
        and not any(fnmatch.fnmatchcase(t.name, p) for p in leave)
    ]
    if not out:
        raise UsageError(f"--limit {','.join(wanted)} leaves no target to run")
    return out


@dataclass
class FleetView:
    """What shows a group's targets running at once, in place of each run's
    steps (they would interleave): the CLI's live table, or a line per target."""

    make_reporter: Callable[[], Reporter]  # each target's (a silent one, usually)
    begin: Callable[[str, str, list[str], int], None]  # fleet id, playbook, targets, forks
    started: Callable[[str], None]  # a target's name, as it starts
    ended: Callable[[RunOutcome], None]  # as each ends (not run ones too)


# Seconds the open incidents read for a fleet's recoveries are shared.
SNAPSHOT_AGE = 2.0


class NotifierJournal:
    """The journal connection a run's notifiers write through: one for all the
    targets of a run (opened when the first needs it), apart from the run's
    own. A delivery the run let go may still record its end: `close` closes
    the connection once the delivery threads end (a worker or a scheduler runs
    thousands of runs in one process: one connection left open a run would
    use up the journal server's)."""

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._store: JournalStore | None = None
        self._taken_up = False
        self._threads: list[threading.Thread] = []
        self._open: dict[str, tuple[float, list[IncidentRecord]]] = {}  # by playbook

    def __call__(self) -> JournalStore:
        with self._lock:
            return self._opened()

    def _opened(self) -> JournalStore:
        """The connection, opened if need be (the caller holds the lock)."""
        if self._store is None:
            self._store = open_store(self.config)
        return self._store

    def open_incidents(self, playbook: str, keys: Collection[str]) -> list[IncidentRecord]:
        """The open incidents of `keys`, of the playbook's as the journal showed
        them at most SNAPSHOT_AGE ago: the targets of a fleet ending at about
        the same time share one read, where each read its own (a thousand reads
        through one connection, in turn). An incident another process opened
        in those seconds is resolved by the next run that passes its gate."""
        with self._lock:
            now = time.monotonic()
            taken = self._open.get(playbook)
            if taken is None or now - taken[0] > SNAPSHOT_AGE:
                taken = (now, self._opened().incidents(only_open=True, playbook=playbook))
                self._open[playbook] = taken
        return [incident for incident in taken[1] if incident.key in keys]

    def attend(self, thread: threading.Thread) -> None:
        """A thread that writes through this connection: closing waits for it."""
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    def close(self) -> None:
        """Close the connection now if no delivery is going, else once the last
        ends (each is bounded by its channel's timeout and retries)."""
        with self._lock:
            store, self._store = self._store, None
            going = [t for t in self._threads if t.is_alive()]
            self._threads = []
        if store is None:
            return
        if not going:
            store.close()
            return

        def close_after() -> None:
            for thread in going:
                thread.join()
            store.close()

        threading.Thread(target=close_after, name="runbook-deliveries-close", daemon=True).start()

    def take_up_abandoned(self) -> bool:
        """True once a run: the notifier that takes up what dead processes left undelivered."""
        with self._lock:
            first, self._taken_up = not self._taken_up, True
            return first


def one_at_a_time(prompter: Prompter) -> Callable[[Target], Prompter]:
    """A `confirm` step's question from targets running at once: asked one at
    a time, each naming its target, so that an answer goes where it was meant."""
    asking = threading.Lock()

    def for_target(target: Target) -> Prompter:
        def ask(prompt: str, details: str | None) -> bool:
            with asking:
                return prompter(f"[{target.name}] {prompt}", details)

        return ask

    return for_target


def fan_out(
    fan: Fanout[Target, RunOutcome],
    targets: list[Target],
    strategy: Strategy,
    one: Callable[[Target, Sessions | None, str | None], RunOutcome],
    on_outcome: Callable[[RunOutcome], None] | None,
    on_start: Callable[[Target], None] | None = None,
) -> list[RunOutcome]:
    """A group's targets at once, in the strategy's order and waves, until the
    failure budget is spent; those never started are recorded not_run, with why."""
    budget = Budget(len(targets), strategy)
    batches = waves(ordered(targets, strategy.order), strategy.waves)
    ran, left, why = fan.run(
        batches, lambda t, sessions: one(t, sessions, None), on_outcome, budget.count, on_start
    )
    outcomes = {o.target: o for o in ran}
    for outcome in record_not_run(left, why or "not started", one, on_outcome):
        outcomes[outcome.target] = outcome
    return [outcomes[t.name] for t in targets if t.name in outcomes]


def record_not_run(
    targets: list[Target],
    why: str,
    one: Callable[[Target, Sessions | None, str | None], RunOutcome],
    on_outcome: Callable[[RunOutcome], None] | None,
) -> list[RunOutcome]:
    """Targets never started (a spent budget, a Ctrl-C), each journaled
    not_run with why and shown as it ends."""
    outcomes = []
    for target in targets:
        outcome = one(target, None, why)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes
