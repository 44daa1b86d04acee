"""Targets at once: a pool of `forks` threads, at most `per_server` of them on
one server (databases on one server share its max_connections).

Each target runs as it would alone (runbook.service.run_target), with its own
session, recorder and notifier; nothing is shared between them but the
journal, whose stores lock their connection. Ctrl-C reaches the main thread
only: it stops targets not started yet and interrupts each running one's
session (runbook.pg.db.Session.interrupt), which cancels its statement and
turns it into the KeyboardInterrupt a run of its own would have seen, so each
is journaled interrupted as Ctrl-C would. Targets never started are handed
back, with the reason, for the caller to record as not run.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Generic, TypeVar

from runbook.pg.db import Session

T = TypeVar("T")
R = TypeVar("R")


# Why a target a Ctrl-C kept from starting is journaled not_run.
NOT_STARTED = "interrupted (Ctrl-C) before it started"


class Sessions:
    """The sessions of the targets running now, to interrupt them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Weak: a worker lives for days and runs thousands; a run's session
        # leaves this set when the run lets go of it.
        self._open: weakref.WeakSet[Session] = weakref.WeakSet()
        self.interrupted = False

    def add(self, session: Session) -> None:
        with self._lock:
            self._open.add(session)
            if self.interrupted:
                session.interrupt()

    def interrupt(self) -> None:
        with self._lock:
            self.interrupted = True
            going = list(self._open)
        for session in going:
            session.interrupt()


class Fanout(Generic[T, R]):
    def __init__(
        self,
        forks: int,
        per_server: int | None,
        server_of: Callable[[T], str],
    ) -> None:
        self.forks = max(1, forks)
        self.per_server = per_server
        self.server_of = server_of
        self.sessions = Sessions()
        self._gates: dict[str, threading.Semaphore] = defaultdict(
            lambda: threading.Semaphore(per_server or 1)
        )
        self._gates_lock = threading.Lock()

    @contextlib.contextmanager
    def _slot(self, item: T) -> Iterator[None]:
        if self.per_server is None:
            yield
            return
        with self._gates_lock:
            gate = self._gates[self.server_of(item)]
        with gate:
            yield

    def run(
        self,
        waves: list[list[T]],
        work: Callable[[T, Sessions], R],
        on_done: Callable[[R], None] | None = None,
        stop: Callable[[R], str | None] | None = None,
        on_start: Callable[[T], None] | None = None,
    ) -> tuple[list[R], list[T], str | None]:
        """`work` for each item, `forks` at once, wave after wave. `stop` is
        told each result as it ends and says why no new item is to start (the
        failure budget), if so. Returns the results in the items' order, the
        items never started, and why they were not (a stop's reason, or Ctrl-C)."""
        halted: list[str] = []  # why no new item starts: set once, read by every thread

        def guarded(item: T) -> R | None:
            if halted:
                return None  # not started before the stop: not started at all
            with self._slot(item):
                if halted:
                    return None
                if on_start is not None:
                    on_start(item)
                result = work(item, self.sessions)
            # Judged here, as it ends, so that no other thread starts a target
            # between this one spending the budget and the main thread hearing of it.
            why = stop(result) if stop is not None else None
            if why is not None:
                halted.append(why)
            return result

        order = {id(item): i for i, item in enumerate(i for wave in waves for i in wave)}
        results: dict[int, R] = {}
        with ThreadPoolExecutor(self.forks, thread_name_prefix="runbook-target") as pool:
            futures: dict[Future[R | None], T] = {}
            try:
                for wave in waves:
                    if halted:
                        break
                    futures = {pool.submit(guarded, item): item for item in wave}
                    for future in as_completed(futures):
                        done = future.result()
                        if done is None:
                            continue
                        results[order[id(futures[future])]] = done
                        if on_done is not None:
                            on_done(done)
            except KeyboardInterrupt:
                halted.append(NOT_STARTED)
                self.sessions.interrupt()
                for future in futures:
                    future.cancel()
                for future, item in futures.items():
                    if not future.cancelled():
                        done = future.result()
                        if done is not None:
                            results[order[id(item)]] = done
        every = [item for wave in waves for item in wave]
        left = [item for item in every if order[id(item)] not in results]
        return [results[i] for i in sorted(results)], left, halted[0] if halted else None
