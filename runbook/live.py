"""A fanned-out run's live table on a terminal (the report layer: it prints).

`render` turns a board (runbook.fleet.board) into at most `height` lines of at
most `width` columns, whatever the targets are called: a header (playbook,
done/total, elapsed, rate, ETA), the counts by status, the latest failures
and the longest-running targets, each section cut to the rows there are.
A frame reads O(rows) of the board, never all its targets.

Text from outside (target names, reasons, step names) is shown, never
obeyed: control and format characters (ESC, CR, bidi overrides, zero-width
joiners …) are written as escapes (`\\x1b`), so a name cannot move the
cursor, recolour the terminal or hide itself; wide characters count two
columns and a stack of combining marks keeps one.

`LiveTable` redraws the table in place (cursor up, erase down) from a thread,
at most every `min_gap` seconds and at least every `interval`, sized by
shutil.get_terminal_size() at each frame; on leaving it draws the final
frame, moves below it and shows the cursor again, Ctrl-C or not.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from types import TracebackType
from typing import ParamSpec, TextIO, TypeVar

from runbook.fleet.board import Board, Failure, Running, Snapshot
from runbook.outcome import RunOutcome, RunStatus
from runbook.plan import Plan, PlannedStep
from runbook.report import SilentReporter
from runbook.shown import columns_of, fit

P = ParamSpec("P")
T = TypeVar("T")

DOT = " · "

# Counts always shown (a zero is news too), in this order; other statuses when not zero.
ALWAYS = ("ok", "gate_failed", "failed", "unreachable", "interrupted")
SOMETIMES = tuple(
    s.value
    for s in RunStatus
    if s.value not in ALWAYS and s not in (RunStatus.RUNNING, RunStatus.NOT_RUN)
)


# ---------------------------------------------------------------- text that fits


def _pad(shown: str, width: int) -> str:
    return shown + " " * max(0, width - columns_of(shown))


# ---------------------------------------------------------------- the frame


def duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def _header(snap: Snapshot, width: int) -> str:
    name = fit(snap.playbook, max(8, width // 3), flow=True)
    if snap.total == 0 and snap.began is None:
        return fit(f"{name}{DOT}starting…", width)
    elapsed = snap.now - snap.began if snap.began is not None else 0.0
    parts = [name, f"{snap.done}/{snap.total} done", duration(elapsed)]
    if snap.done and elapsed > 0:
        rate = snap.done / elapsed
        parts.append(f"{rate:.1f}/s" if rate >= 1 else f"{rate * 60:.1f}/min")
        left = snap.total - snap.done
        if left and not snap.finished:
            parts.append(f"ETA {duration(left / rate)}")
    if snap.finished:
        parts.append("finished")
    return fit(DOT.join(parts), width)


def _counts(snap: Snapshot) -> list[str]:
    """`status N` cells: what is going on first, then how the ended ones ended."""
    if not snap.finished:
        cells = [f"running {snap.running}", f"waiting {snap.waiting}"]
    else:
        cells = [f"unfinished {snap.running}"] if snap.running else []
    cells += [f"{status} {snap.counts.get(status, 0)}" for status in ALWAYS]
    cells += [f"{status} {snap.counts[status]}" for status in SOMETIMES if snap.counts.get(status)]
    # At the end the targets never started (nor told of) are not run too.
    unstarted = snap.counts.get("not_run", 0) + (snap.waiting if snap.finished else 0)
    if unstarted:
        cells.append(f"not_run {unstarted}")
    return cells


def _pack(cells: list[str], width: int) -> list[str]:
    """Cells on as few lines as fit, two spaces apart."""
    lines: list[str] = []
    line = ""
    for cell in cells:
        if line and len(line) + 2 + len(cell) <= width:
            line += "  " + cell
            continue
        if line:
            lines.append(line)
        line = fit(cell, width)
    if line:
        lines.append(line)
    return lines


def _running_rows(snap: Snapshot, shown: list[Running], width: int) -> list[str]:
    names = [fit(r.name, max(12, width // 3)) for r in shown]
    times = [duration(snap.now - r.started) for r in shown]
    name_w = max(map(columns_of, names), default=0)
    time_w = max(map(len, times), default=0)
    return [
        fit(f"  {_pad(n, name_w)}  {t:>{time_w}}  {fit(r.step, width, flow=True)}".rstrip(), width)
        for n, t, r in zip(names, times, shown, strict=True)
    ]


def _failure_rows(shown: list[Failure], width: int) -> list[str]:
    names = [fit(f.name, max(12, width // 3)) for f in shown]
    name_w = max(map(columns_of, names), default=0)
    kinds = [
        f"{f.status} (exit {f.exit_code}{', ' + f.severity if f.severity else ''})" for f in shown
    ]
    kind_w = max(map(len, kinds), default=0)
    return [
        fit(
            f"  {_pad(n, name_w)}  {_pad(fit(k, width), kind_w)}  {fit(f.reason, width, flow=True)}".rstrip(),
            width,
        )
        for n, k, f in zip(names, kinds, shown, strict=True)
    ]


def _section(
    title: str, one_line: str, rows: list[str], hidden: int, budget: int, width: int
) -> list[str]:
    """A title and rows in `budget` lines: one line says it all when that is all there is."""
    if budget <= 0 or not rows:
        return []
    if budget == 1:
        return [fit(one_line, width)]
    shown = rows[: budget - 1]
    more = hidden + len(rows) - len(shown)
    if more and len(shown) > 1 and len(shown) == budget - 1:
        more += 1
        shown = shown[:-1]
    out = [fit(title, width), *shown]
    if more and len(out) < budget:
        out.append(fit(f"  … and {more} more", width))
    return out


def render(board: Board | Snapshot, width: int, height: int, now: float | None = None) -> list[str]:
    """The table in at most `height` lines of at most `width` columns."""
    if width <= 0 or height <= 0:
        return []
    snap = board.snapshot(height, now) if isinstance(board, Board) else board
    lines = [_header(snap, width), *_pack(_counts(snap), width)]
    if snap.stopped:
        lines.append(fit(f"no more targets start: {snap.stopped}", width, flow=True))
    lines = lines[:height]
    left = height - len(lines)
    failures = _failure_rows(snap.failures[:left], width)
    slow = snap.slowest[:left]
    running = _running_rows(snap, slow, width)
    latest = snap.failures[0] if snap.failures else None
    longest = slow[0] if slow else None
    fail_title = f"latest failures ({snap.failed}), newest first:"
    fail_line = (
        f"latest failure: {fit(latest.name, width)} {latest.status} {fit(latest.reason, width, flow=True)}"
        if latest
        else ""
    )
    run_title = f"{'unfinished' if snap.finished else 'running'} ({snap.running}), longest first:"
    run_line = (
        f"{'unfinished' if snap.finished else 'running'} {snap.running}, longest {fit(longest.name, width)} {duration(snap.now - longest.started)}"
        if longest
        else ""
    )
    fail_hidden = snap.failed - len(failures)
    run_hidden = snap.running - len(running)
    if failures and running:
        # Failures first (at least half of what is left), the rest the running ones.
        need_fail = 1 + len(failures) + (1 if fail_hidden else 0)
        need_run = 1 + len(running) + (1 if run_hidden else 0)
        fail_budget = min(need_fail, max(1, (left + 1) // 2))
        if left - fail_budget > need_run:
            fail_budget = min(need_fail, left - need_run)
        run_budget = left - fail_budget
    else:
        fail_budget = run_budget = left
    lines += _section(fail_title, fail_line, failures, fail_hidden, fail_budget, width)
    lines += _section(run_title, run_line, running, run_hidden, run_budget, width)
    return lines[:height]


# ---------------------------------------------------------------- on a terminal

HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"
ERASE_DOWN = "\x1b[J"
CLEAR_SCREEN = "\x1b[H\x1b[2J"


def _terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size()
    return size.columns, size.lines


class _StepReporter(SilentReporter):
    """A target's reporter: tells the board which step it is in."""

    def __init__(self, board: Board) -> None:
        self._board = board
        self._of = 0

    def run_started(self, plan: Plan, run_id: str) -> None:
        self._of = len(plan.steps)

    def step_started(self, ps: PlannedStep) -> None:
        self._board.step(f"step {ps.number}/{self._of} {ps.name}")


class LiveTable:
    """The table redrawn in place on `stream` (a terminal) while a run goes on.

    The run service is handed `reporter`, `begin`, `started` and `ended` (a
    FleetView); use it as a context manager around the run. Nothing shows
    until the first target starts (a question before the run is left alone)."""

    def __init__(
        self,
        board: Board,
        stream: TextIO,
        size: Callable[[], tuple[int, int]] | None = None,
        interval: float = 0.25,
        min_gap: float = 0.1,
    ) -> None:
        self.board = board
        self._stream = stream
        self._size = size or _terminal_size
        self._interval = interval
        self._min_gap = min_gap
        self._drawn = 0  # lines of the last frame on screen (the cursor is on its last)
        self._shape: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._shown = False  # the cursor is hidden: show it again at the end
        self.frames = 0

    # what the run service is handed (its FleetView)
    def reporter(self) -> SilentReporter:
        return _StepReporter(self.board)

    def begin(self, fleet: str, playbook: str, targets: list[str], forks: int) -> None:
        self.board.begin(playbook, len(targets))

    def started(self, name: str) -> None:
        self.board.started(name)
        if self._thread is None:
            self._begin()

    def ended(self, outcome: RunOutcome) -> None:
        self.board.ended(outcome)

    # drawing
    def frame(self) -> str:
        """What the next redraw writes: back to the top of the last frame, the new one."""
        width, height = self._size()
        lines = render(self.board, width - 1, height - 1)  # the last column and row stay free
        if self._shape is not None and self._shape != (width, height):
            move = CLEAR_SCREEN  # lines drawn at the old width may have wrapped
        elif self._drawn > 1:
            move = f"\r\x1b[{self._drawn - 1}A{ERASE_DOWN}"
        elif self._drawn == 1:
            move = f"\r{ERASE_DOWN}"
        else:
            move = ""
        self._shape = (width, height)
        self._drawn = len(lines)
        return move + "\n".join(lines)

    def draw(self) -> None:
        with self._lock:
            text = self.frame()
            encoding = getattr(self._stream, "encoding", None) or "utf-8"
            text = text.encode(encoding, "replace").decode(encoding)
            self._stream.write(text)
            self._stream.flush()
            self.frames += 1

    def pausing(self, ask: Callable[P, T]) -> Callable[P, T]:
        """`ask` (a question, a message) shown below the table, which waits for
        it and is drawn afresh below after."""

        def paused(*args: P.args, **kwargs: P.kwargs) -> T:
            if not self._shown:  # not fanned out, or not started: nothing to give way
                return ask(*args, **kwargs)
            with self._lock:  # no frame is drawn meanwhile
                if self._drawn:
                    self._stream.write("\n")
                self._stream.write(SHOW_CURSOR)
                self._stream.flush()
                self._drawn = 0
                try:
                    return ask(*args, **kwargs)
                finally:
                    if self._shown and not self._stop.is_set():
                        self._stream.write(HIDE_CURSOR)

        return paused

    def _loop(self) -> None:
        changed = self.board.changed
        while not self._stop.is_set():
            changed.wait(self._interval)
            if self._stop.is_set():
                return
            changed.clear()
            try:
                self.draw()
            except (OSError, ValueError):  # the terminal went away
                return
            self._stop.wait(self._min_gap)

    def _begin(self) -> None:
        """The first target started: from now on the table is the output (what
        comes before, a question on a protected target say, is left alone)."""
        with self._starting:
            if self._thread is not None or self._stop.is_set():
                return
            self._shown = True
            self._stream.write(HIDE_CURSOR)
            self.draw()
            self._thread = threading.Thread(target=self._loop, name="runbook-live", daemon=True)
            self._thread.start()

    def __enter__(self) -> LiveTable:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        with self._starting:
            self._stop.set()
        if not self._shown:
            return
        try:
            self.board.changed.set()
            if self._thread is not None:
                self._thread.join(timeout=2)
            self.board.finish()
            self.draw()
        finally:
            self._stream.write("\n" + SHOW_CURSOR)
            self._stream.flush()


def on_terminal(stream: TextIO) -> LiveTable:
    """The table for a run about to start, on `stream` (a terminal)."""
    return LiveTable(Board(""), stream)
