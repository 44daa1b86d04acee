"""Targets at once: a pool of `forks` threads, at most `per_server` of them on
one server (databases on one server share its max_connections).

Each target runs as it would alone (runbook.service.run_target), with its own
session, recorder and notifier; nothing is shared between them but the
journal, whose stores lock their connection. Ctrl-C reaches the main thread
only: it stops targets not started yet and interrupts each running one's
session (runbook.pg.db.Session.interrupt), which cancels its statement and
turns it into the KeyboardInterrupt a run of its own would have seen, so each
is journaled interrupted as Ctrl-C would.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Generic, TypeVar

from runbook.pg.db import Session

T = TypeVar("T")
R = TypeVar("R")


class Sessions:
    """The sessions of the targets running now, to interrupt them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[Session] = []
        self.interrupted = False

    def add(self, session: Session) -> None:
        with self._lock:
            self._open.append(session)
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
        items: list[T],
        work: Callable[[T, Sessions], R],
        on_done: Callable[[R], None] | None = None,
    ) -> list[R]:
        """`work` for each item, `forks` at once; results in the items' order.
        After Ctrl-C: the results of the targets that had started."""

        def guarded(item: T) -> R | None:
            if self.sessions.interrupted:
                return None  # not started before the Ctrl-C: not started at all
            with self._slot(item):
                if self.sessions.interrupted:
                    return None
                return work(item, self.sessions)

        results: list[R | None] = [None] * len(items)
        with ThreadPoolExecutor(self.forks, thread_name_prefix="runbook-target") as pool:
            futures: dict[Future[R | None], int] = {
                pool.submit(guarded, item): i for i, item in enumerate(items)
            }
            try:
                for future in as_completed(futures):
                    results[futures[future]] = done = future.result()
                    if done is not None and on_done is not None:
                        on_done(done)
            except KeyboardInterrupt:
                self.sessions.interrupt()
                for future in futures:
                    future.cancel()
                for future, index in futures.items():
                    if not future.cancelled():
                        results[index] = future.result()
        return [r for r in results if r is not None]
