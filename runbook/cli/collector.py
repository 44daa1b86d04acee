"""The garbage collector: off while a command starts, out of the engine's way.

Loading a playbook builds objects that live as long as the run (steps, gates,
compiled templates) and almost no cyclic garbage, yet with the default
thresholds the collector runs every 700 allocations and, as the heap grows,
scans all of it again: measured on a 1000-step playbook, 50 collections and
20-40 ms spent finding nothing (0.02-0.04 ms a step, a tenth of the engine's
own cost). So the collector is off while files load, and when the steps begin
everything alive is frozen out of its way and it runs again with a higher
threshold: a run can be long (a `wait` step, a thousand checks) and its cycles
must still be freed.

The same holds for a command's start-up: importing psycopg, Jinja and
runbook's modules makes nothing but long-lived objects, and young collections
during it cost 15-20 ms of every command. The CLI runs each command with the
collector paused (`paused`); a run turns it on when its steps begin.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from types import TracebackType

YOUNG = 20_000  # allocations between young collections while steps run (default 700)


class Quiet:
    """`with Quiet() as collector:` … load … `collector.steps_begin()` … run."""

    def __init__(self) -> None:
        self._thresholds = gc.get_threshold()
        self._enabled = gc.isenabled()
        self._frozen = False

    def __enter__(self) -> Quiet:
        gc.disable()
        return self

    def steps_begin(self) -> None:
        """Freeze what loading built and collect again, less often.

        No gc.collect() first: on a fresh process it would scan every imported
        module (10-20 ms of start-up) to free garbage a run can just keep.
        """
        if not self._frozen:
            gc.freeze()
            self._frozen = True
        gc.set_threshold(YOUNG, self._thresholds[1], self._thresholds[2])
        gc.enable()  # even under `paused`: steps can run for hours

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        gc.set_threshold(*self._thresholds)
        if self._frozen:
            gc.unfreeze()
        if self._enabled:
            gc.enable()
        else:
            gc.disable()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No collections while a command starts (runs turn them on for their steps)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
