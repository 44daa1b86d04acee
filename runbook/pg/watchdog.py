"""The client's backstop for a statement's timeout: each session's deadline,
and one thread in the process that cancels a statement past it (the server's
own statement_timeout is the precise limit; this is for a server that stops
answering). A cancel is a request the server must act on: one that does not
(a backend stopped, a network that drops the answers) would leave the step
waiting forever, so CUT_GRACE later the connection's socket is shut down and
the step's wait ends with the connection lost."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from typing import Any

import psycopg

CUT_GRACE = 5.0  # seconds after the cancel before the connection is cut


class Watchdog:
    """A session's deadline, which one thread for all sessions (_Watcher) looks at.

    Arming is two attribute writes (no lock, no wake-up): the watcher looks at
    the deadlines a few times a second. The server's own statement_timeout is
    the precise limit; this is the backstop for a server that stops answering.
    """

    def __init__(self) -> None:
        self._deadline: float | None = None
        self._cut_at: float | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self.fired = False  # the statement was cancelled by the client
        self.cut = False  # and, that unanswered, its connection cut
        self._watched = False

    def arm(self, conn: psycopg.Connection[Any], seconds: float) -> None:
        self.fired = self.cut = False
        self._conn = conn
        self._cut_at = None
        self._deadline = time.monotonic() + seconds
        if not self._watched:
            self._watched = True
            _WATCHER.add(self)

    def disarm(self) -> None:
        self._deadline = self._cut_at = None

    def close(self) -> None:
        self._deadline = self._cut_at = None
        if self._watched:
            self._watched = False
            _WATCHER.remove(self)

    def due(self, now: float) -> psycopg.Connection[Any] | None:
        """The connection to cancel, if its deadline has passed (once)."""
        deadline, conn = self._deadline, self._conn
        if deadline is None or conn is None or now < deadline:
            return None
        self._deadline = None
        self._cut_at = now + CUT_GRACE
        self.fired = True
        return conn

    def cut_due(self, now: float) -> psycopg.Connection[Any] | None:
        """The connection to cut, if the statement outlived its cancel by
        CUT_GRACE (once; disarming when the statement ends forgets it)."""
        cut_at, conn = self._cut_at, self._conn
        if cut_at is None or conn is None or now < cut_at:
            return None
        self._cut_at = None
        self.cut = True
        return conn


class _Watcher:
    """One thread watching every session's deadline in this process (a fleet
    runs a hundred sessions at once: one thread, not a hundred). It sleeps
    while no session is watched; a cancel runs on a thread of its own, so a
    server that does not answer one holds up no other session's."""

    TICK = 0.25

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watching: set[Watchdog] = set()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def add(self, dog: Watchdog) -> None:
        with self._lock:
            self._watching.add(dog)
            if self._thread is None or not self._thread.is_alive():  # not yet, or a fork
                self._thread = threading.Thread(
                    target=self._loop, name="runbook-watchdog", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def remove(self, dog: Watchdog) -> None:
        with self._lock:
            self._watching.discard(dog)

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._watching:
                    self._wake.wait()
                dogs = list(self._watching)
            now = time.monotonic()
            for dog in dogs:
                conn = dog.due(now)
                if conn is not None:
                    threading.Thread(
                        target=_cancel, args=(conn,), name="runbook-cancel", daemon=True
                    ).start()
                conn = dog.cut_due(now)
                if conn is not None:
                    _cut(conn)
            time.sleep(self.TICK)


def _cancel(conn: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(Exception):
        conn.cancel_safe(timeout=CUT_GRACE)


def _cut(conn: psycopg.Connection[Any]) -> None:
    """Shut the connection's socket down under the thread waiting on it: its
    wait ends at once with the connection lost (libpq closes it as ever; the
    server, once it looks, finds its client gone and rolls back)."""
    with (
        contextlib.suppress(OSError, psycopg.Error),
        socket.socket(fileno=os.dup(conn.fileno())) as sock,
    ):
        sock.shutdown(socket.SHUT_RDWR)


_WATCHER = _Watcher()
