"""Time, in one place, so tests can control it (escalation timelines, waits)."""

from __future__ import annotations

import datetime
import os
import time


class Clock:
    _second = -1
    _prefix = ""

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    @staticmethod
    def from_environment() -> Clock:
        """`$RUNBOOK_NOW` (ISO time) pins the time: for tests and for replaying an
        escalation timeline; otherwise the real clock."""
        pinned = os.environ.get("RUNBOOK_NOW")
        return FixedClock(parse_iso(pinned)) if pinned else Clock()

    def iso_now(self) -> str:
        """`now()` as ISO text; formatted once per second (it is written twice per step)."""
        if type(self).now is not Clock.now:  # a test's clock
            return iso(self.now())
        moment = time.time()
        second = int(moment)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{int((moment - second) * 1000):03d}Z"

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FixedClock(Clock):
    """A clock that says what it is told (sleeping still takes real time)."""

    def __init__(self, moment: datetime.datetime) -> None:
        self.moment = moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)

    def now(self) -> datetime.datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += datetime.timedelta(seconds=seconds)


def iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
