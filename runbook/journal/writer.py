"""Group commit: one writer thread per journal store, shared by every run on it.

Records of read-only steps wait in memory (at most GROUP_COMMIT) and are
written in one transaction while the runs go on; a step that may change
something first waits for everything its run put before it to be written
(`wait`), so no side effect ever precedes its record. A kill -9 loses at most
GROUP_COMMIT worth of read-only steps' records: the run then shows as
interrupted a step or two early, never as having done what it did not. SQLite
and psycopg both let go of the GIL while they wait, so the writing overlaps
the queries.

The targets of a fleet run share the run's store, so they share its writer:
one connection and one thread for the run, not one per target, and the
records of many targets go in one transaction. Each run's records stay in
the order it put them. A batch that fails is written again run by run, so
that only the run whose records cannot be written sees the error (at its
next put or wait), as when each run wrote alone; but not one whose
connection was lost as it committed and that may be in the journal already
(AppendUnknown, runbook.journal.postgres_landed): every run in it hears of it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from runbook.errors import Interrupted
from runbook.journal.events import AppendUnknown, prepare
from runbook.journal.store import StoreConfig, open_store

Event = tuple[str, str | None, str, dict[str, Any]]
GROUP_COMMIT = 0.01  # seconds records of read-only steps may wait in memory
# After a Ctrl-C that came while a run waited on its records (a journal that
# stopped answering), how long a later wait (the interruption's own record,
# the run's end) or the writer's close waits before giving up.
GIVE_UP = 5.0


_GIVEN_UP = (
    f"the journal did not answer within {GIVE_UP:g}s: the run's last records may be "
    "missing from it, as after a kill"
)


class Writer:
    """The writer thread of one store; `put`, `wait` and `forget` name their owner
    (a recorder): errors are handed to the owner whose records they concern."""

    def __init__(self, config: StoreConfig) -> None:
        self._config = config
        self._journal: Any = None  # opened by the thread (a connection of its own)
        # A plain lock under the condition: `put` takes it once a step, and a
        # Lock's `with` is C (the Condition's own is a Python method).
        self._lock = threading.Lock()
        # The writer thread waits on `_work`; each run that waits, on a lock of
        # its own (`_waiting`), released once its ticket is written. A shared
        # condition would wake every waiting run at every batch and every put:
        # a hundred threads taking the interpreter's lock to go back to sleep.
        self._work = threading.Condition(self._lock)
        self._waiting: list[tuple[int, threading.Lock]] = []
        self._buffer: list[tuple[object, list[Event]]] = []
        self._since = 0.0
        self._queued = 0  # puts so far (tickets handed out)
        self._written = 0  # puts whose records are on disk (or failed)
        self._hurry = False
        self._closing = False
        self._errors: dict[object, BaseException] = {}  # by owner
        self._thread: threading.Thread | None = None
        # Ctrl-C came while a run waited on this writer; then, a bounded wait
        # ran out: from then on waits give up at once (the process is ending).
        self._interrupted = False
        self._abandoned = False

    def _start(self) -> None:
        # A connection of its own: the run's thread keeps reading the journal.
        self._journal = open_store(self._config)
        self._thread = threading.Thread(target=self._loop, name="runbook-journal", daemon=True)
        self._thread.start()

    def put(self, owner: object, events: list[Event]) -> int:
        """Queue `owner`'s events; the ticket to `wait` for."""
        with self._lock:
            self._raise(owner)
            if not events:
                return self._queued
            if self._thread is None:
                self._start()
            if not self._buffer:
                self._since = time.monotonic()
                self._work.notify()
            self._buffer.append((owner, events))
            self._queued += 1
            return self._queued

    def wait(self, owner: object, ticket: int) -> None:
        """Return once everything up to `ticket` is in the journal."""
        with self._lock:
            if self._written >= ticket:
                self._raise(owner)
                return
            written = threading.Lock()
            written.acquire()
            self._waiting.append((ticket, written))
            self._hurry = True
            self._work.notify()
        self._await(written)
        with self._lock:
            self._raise(owner)

    def interrupted(self) -> None:
        """The operator interrupted a run on this writer: from now on a wait
        gives up after GIVE_UP."""
        self._interrupted = True

    def _await(self, written: threading.Lock) -> None:
        """Wait for the writer thread to release `written`. Ctrl-C ends the
        wait; after one, a journal that does not answer within GIVE_UP is
        given up on, so that the operator's Ctrl-C ends the process as a
        kill would (the records not yet written are lost, as then)."""
        if self._abandoned:
            raise Interrupted(_GIVEN_UP)
        try:
            if not self._interrupted:
                written.acquire()  # released by the writer thread (in C: no Python wake-up)
            elif not written.acquire(timeout=GIVE_UP):
                self._abandoned = True
                raise Interrupted(_GIVEN_UP)
        except KeyboardInterrupt:
            self._interrupted = True
            raise

    def forget(self, owner: object) -> None:
        """The owner is done: an error it was not told of is dropped."""
        with self._lock:
            self._errors.pop(owner, None)

    def _raise(self, owner: object) -> None:
        error = self._errors.pop(owner, None)
        if error is not None:
            raise error

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._buffer and not self._closing:
                    self._work.wait()
                if not self._buffer:
                    return
                deadline = self._since + GROUP_COMMIT
                while not (self._hurry or self._closing):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._work.wait(left)
                batch, self._buffer = self._buffer, []
                upto, self._hurry = self._queued, False
            failed = self._write(batch)
            with self._lock:
                self._errors.update(failed)
                self._written = upto
                still: list[tuple[int, threading.Lock]] = []
                for ticket, written in self._waiting:
                    if ticket <= upto:
                        written.release()
                    else:
                        still.append((ticket, written))
                self._waiting = still
                # A waiter queued meanwhile keeps the next batch in a hurry.
                self._hurry = self._hurry or bool(still)

    def _write(self, batch: list[tuple[object, list[Event]]]) -> dict[object, BaseException]:
        """Write a batch in one transaction; if it fails, each owner's part in one
        of its own. The errors, by owner."""
        try:
            self._journal.append_prepared(prepare([e for _, events in batch for e in events]))
            return {}
        except BaseException as exc:  # handed to the runs' threads at their next call
            owners = list(dict.fromkeys(owner for owner, _ in batch))
            if len(owners) == 1 or isinstance(exc, AppendUnknown):
                # Perhaps written (its connection lost as it committed): written
                # again, it could be there twice. Each run hears of it.
                return dict.fromkeys(owners, exc)
        failed: dict[object, BaseException] = {}
        for one in owners:
            mine = [e for owner, events in batch if owner is one for e in events]
            try:
                self._journal.append_prepared(prepare(mine))
            except BaseException as exc:
                failed[one] = exc
        return failed

    def close(self) -> None:
        """Write what is queued, stop the thread, close its connection."""
        with self._lock:
            self._closing = True
            self._work.notify()
            thread = self._thread
        if thread is not None:
            thread.join(0 if self._abandoned else GIVE_UP if self._interrupted else None)
            if thread.is_alive():
                return  # a journal that does not answer: left to the process's end
            self._journal.close()


class WriterSlot:
    """A store's writers, made when first asked for (most stores never write
    runs). SQLite takes one writer at a time: one. A PostgreSQL journal takes
    `size`, each with its connection, handed out in turn: a run keeps the one
    it was given (its records stay in order), and runs on different writers
    append at once (each run's records are a chain of their own, locked
    apart: runbook.journal.postgres)."""

    def __init__(self, config: StoreConfig, size: int = 1) -> None:
        self._config = config
        self._size = max(1, size)
        self._lock = threading.Lock()
        self._writers: list[Writer] = []
        self._turn = 0

    def get(self) -> Writer:
        with self._lock:
            if len(self._writers) < self._size:
                self._writers.append(Writer(self._config))
                return self._writers[-1]
            self._turn = (self._turn + 1) % self._size
            return self._writers[self._turn]

    def close(self) -> None:
        with self._lock:
            writers, self._writers = self._writers, []
        for writer in writers:
            writer.close()
