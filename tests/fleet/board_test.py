"""The fleet's live table (runbook.fleet.board, runbook.live): it fits any
terminal at 1,000 targets, a target's name can't drive the terminal, a frame
costs the rows it shows (counted, not timed), and the real CLI on a
pseudo-terminal draws it in place, then the summary."""

from __future__ import annotations

import io
import re
import sys
import unicodedata
from collections.abc import Callable
from types import FrameType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runbook import live
from runbook.fleet.board import Board
from runbook.outcome import RunOutcome, RunStatus
from tests.conftest import Project
from tests.fleet.fanout_test import SLOW, fleet  # noqa: F401  (the fixture)
from tests.terminal import Terminal


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def columns(line: str) -> int:
    """A terminal's columns for `line`, counted here independently of runbook.live."""
    total = 0
    for char in line:
        if unicodedata.category(char) == "Mn" and unicodedata.combining(char):
            continue
        total += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return total


def outcome(
    name: str, status: RunStatus, reason: str = "", severity: str | None = None
) -> RunOutcome:
    return RunOutcome("r1", "p", name, "run", status, reason=reason, severity=severity)


MIX = [RunStatus.OK] * 6 + [
    RunStatus.GATE_FAILED,
    RunStatus.FAILED,
    RunStatus.UNREACHABLE,
    RunStatus.INTERRUPTED,
]


def fleet_of(total: int, running: int, waiting: int, clock: Clock, names: Any = None) -> Board:
    """`total` targets: the first ones ended (in MIX's proportions), then
    `running` running, then `waiting` not started."""
    board = Board("playbooks/constraint-monitoring/morning-check.yaml", clock=clock)
    names = names or [f"db-{i:05d}.prod" for i in range(total)]
    ended = total - running - waiting
    for i, name in enumerate(names[: ended + running]):
        clock.now += 0.5
        board.started(name, total)
        if i >= running:  # the earliest-started still-running are `running` places back
            done = names[i - running]
            status = MIX[(i - running) % len(MIX)]
            clock.now += 0.01
            board.ended(
                outcome(
                    done,
                    status,
                    f'connection to server at "10.0.{i % 256}.1" failed: timeout\nexpired',
                    "CRITICAL" if status is RunStatus.GATE_FAILED else None,
                )
            )
    return board


def counted(lines: list[str]) -> dict[str, int]:
    """The counts line(s): `status N` pairs, right after the header."""
    out: dict[str, int] = {}
    for line in lines[1:]:
        pairs = re.findall(r"(\b[a-z_]+) (\d+)(?:  |$)", line)
        if not pairs or "".join(f"{k} {v}" for k, v in pairs).replace(" ", "") != line.replace(
            " ", ""
        ):
            break
        out.update((k, int(v)) for k, v in pairs)
    return out


def fits(lines: list[str], width: int, height: int) -> None:
    assert len(lines) <= height, lines
    for line in lines:
        assert columns(line) <= width, (width, line)
        assert not any(unicodedata.category(c)[0] == "C" for c in line), repr(line)


def test_a_thousand_targets_fit_80x24_and_160x50_with_the_key_facts() -> None:
    clock = Clock()
    board = fleet_of(1000, running=120, waiting=280, clock=clock)
    shown: dict[tuple[int, int], list[str]] = {}
    for width, height in ((80, 24), (160, 50)):
        lines = live.render(board, width, height)
        fits(lines, width, height)
        shown[width, height] = lines
        text = "\n".join(lines)
        assert "600/1000 done" in lines[0]
        counts = counted(lines)
        assert sum(counts.values()) == 1000, counts
        assert counts["running"] == 120 and counts["waiting"] == 280
        assert counts["ok"] == 360 and counts["gate_failed"] == 60
        # the longest running first, with how long (119 starts of 0.51 s since)
        assert "running (120), longest first:" in text
        assert re.search(r"db-00600\.prod\s+1m0\ds", text), text
        # the latest failure first, with its status and reason
        assert "latest failures (240)" in text
        latest = next(line for line in lines if "db-00599.prod" in line)
        assert "interrupted" in latest and "connection to server" in latest
    # the bigger terminal shows more of each
    small, big = shown[80, 24], shown[160, 50]
    assert len(big) > len(small) == 24
    assert sum("db-" in line for line in big) > sum("db-" in line for line in small)
    assert "… and" in "\n".join(small)  # what it leaves out, it counts


@settings(max_examples=300, deadline=None)
@given(
    width=st.integers(1, 200),
    height=st.integers(1, 60),
    running=st.integers(0, 40),
    waiting=st.integers(0, 40),
)
def test_every_size_fits(width: int, height: int, running: int, waiting: int) -> None:
    board = fleet_of(100, running, waiting, Clock())
    fits(live.render(board, width, height), width, height)


HOSTILE = [
    "\x1b[2J\x1b[H\x1b[31mpwned\x1b[0m",  # clear the screen, colour
    "\x1b]0;new title\x07bell",  # set the window title
    "\x9b2Jc1-csi",  # a C1 CSI: an escape without ESC
    "carriage\rreturn\nnewline\ttab\x7fdel",
    "\u202egnp.exe",  # right-to-left override
    "zero\u200bwidth\u200djoiner\ufeff",
    "数据库服务器-東京-本番-" * 30,  # wide, and long
    "😀🚀👨\u200d👩\u200d👧" * 40,
    "zalgo" + "\u0301\u0302\u0303\u0304" * 50,
    "lone\ud800surrogate",
    "x" * 10_000,
]


def test_hostile_names_are_shown_never_obeyed() -> None:
    clock = Clock()
    board = Board("\x1b[5mplaybook\x1b[0m\n", clock=clock)
    for name in HOSTILE:
        clock.now += 1
        board.started(name, 2 * len(HOSTILE))
    for name in HOSTILE[::2]:
        board.ended(outcome(name, RunStatus.FAILED, reason=f"\x1b[8mhidden\x1b[0m {name}"))
    for width, height in ((80, 24), (160, 50), (30, 8)):
        lines = live.render(board, width, height)
        fits(lines, width, height)
        text = "\n".join(lines)
        text.encode("utf-8")  # no lone surrogate reaches the terminal
        assert "\x1b" not in text and "\x9b" not in text and "\u202e" not in text
    text = "\n".join(live.render(board, 160, 50))
    assert "\\x1b[31mpwned" in text or "\\x1b[2J" in text  # shown, escaped
    assert "\\u202egnp.exe" in text
    assert "数据库" in text and "😀" in text
    assert "\u0301\\u0302" in text  # one mark on a letter, the stack escaped


def test_fit_cuts_at_the_width_with_an_ellipsis() -> None:
    assert live.fit("abcdef", 4) == "abc…"
    assert live.fit("abc", 3) == "abc"
    assert live.fit("数据库", 4) == "数…"  # a wide character is not split
    assert live.fit("\x1b", 10) == "\\x1b"
    assert live.fit("a\nb", 10, flow=True) == "a b"
    assert live.fit("anything", 0) == ""


def _lines_run(fn: Callable[[], object]) -> int:
    """How many lines of Python `fn` executes: work, counted, not timed."""
    count = 0

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def test_a_frame_costs_the_rows_it_shows_not_the_targets() -> None:
    clock = Clock()
    small = fleet_of(1_000, running=200, waiting=100, clock=clock)
    big = fleet_of(50_000, running=200, waiting=100, clock=Clock())
    for width, height in ((80, 24), (160, 50)):
        few = _lines_run(lambda: live.render(small, width, height))  # noqa: B023
        many = _lines_run(lambda: live.render(big, width, height))  # noqa: B023
        assert many <= few * 1.02 + 10, (few, many)
    # and what a frame reads of the board is bounded by the rows asked for
    snap = big.snapshot(24)
    assert len(snap.slowest) == 24 and len(snap.failures) == 24
    assert snap.running == 200 and snap.done == 49_700


def test_the_board_counts_and_orders_as_events_come() -> None:
    clock = Clock()
    board = Board("p", clock=clock)
    for name in ("a", "b", "c"):
        clock.now += 1
        board.started(name, 4)
    board.step("step 1/2 x")  # this thread's target: the last one it started
    board.ended(outcome("b", RunStatus.OK))
    clock.now += 5
    snap = board.snapshot(10)
    assert [r.name for r in snap.slowest] == ["a", "c"]
    assert snap.slowest[1].step == "step 1/2 x"
    assert (snap.done, snap.running, snap.waiting) == (1, 2, 1)
    board.finish()
    lines = live.render(board, 80, 10)
    assert "finished" in lines[0]
    counts = counted(lines)  # only a crash leaves a target running at the end
    assert (counts["ok"], counts["unfinished"], counts["not_run"]) == (1, 2, 1)


def test_targets_never_started_are_counted_with_why_not_listed_as_failures() -> None:
    clock = Clock()
    board = Board("p", clock=clock)
    board.begin("p", 50)
    board.started("a")
    board.ended(outcome("a", RunStatus.FAILED, "boom"))
    for i in range(49):
        board.ended(outcome(f"n{i}", RunStatus.NOT_RUN, "failure budget spent: 1 of 50 failed"))
    board.finish()
    lines = live.render(board, 80, 24)
    fits(lines, 80, 24)
    assert counted(lines)["not_run"] == 49 and counted(lines)["failed"] == 1
    text = "\n".join(lines)
    assert "no more targets start: failure budget spent" in text
    assert "latest failures (1)" in text and "n0" not in text


class FakeTerminal(io.StringIO):
    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def test_the_table_redraws_in_place() -> None:
    clock = Clock()
    size = [80, 24]
    table = live.LiveTable(Board("p", clock=clock), FakeTerminal(), lambda: (size[0], size[1]))
    table.board.started("a", 3)
    first = table.frame()
    assert not first.startswith("\r") and "\x1b[" not in first
    drawn = first.count("\n") + 1
    again = table.frame()
    assert again.startswith(f"\r\x1b[{drawn - 1}A\x1b[J")  # back to the top, erase down
    size[0] = 100
    assert table.frame().startswith(live.CLEAR_SCREEN)  # resized: redrawn whole


def test_the_table_shows_from_the_first_start_and_restores_the_terminal() -> None:
    stream = FakeTerminal()
    table = live.LiveTable(Board("p", clock=Clock()), stream, lambda: (80, 24))
    with table:
        assert stream.getvalue() == ""  # before a target starts (a question, say): nothing
        table.begin("f1", "p", ["a", "b"], 2)
        assert stream.getvalue() == ""
        table.started("a")
        table.ended(outcome("a", RunStatus.OK))
    out = stream.getvalue()
    assert out.startswith(live.HIDE_CURSOR) and out.endswith("\n" + live.SHOW_CURSOR)
    final = out[out.rindex("\x1b[J") + 3 :]
    assert "1/2 done" in final and "finished" in final and "not_run 1" in final


def test_a_question_is_asked_below_the_table_which_is_drawn_again_below_it() -> None:
    stream = FakeTerminal()
    table = live.LiveTable(Board("p", clock=Clock()), stream, lambda: (80, 24))

    def ask(prompt: str) -> bool:
        stream.write(prompt)
        return True

    assert table.pausing(ask)("before?") is True  # nothing shown yet: just asked
    with table:
        table.begin("f1", "p", ["a", "b"], 2)
        table.started("a")
        assert table.pausing(ask)("[a] go on?") is True
    out = stream.getvalue()
    assert out.startswith("before?" + live.HIDE_CURSOR)
    asked = out.index("\n" + live.SHOW_CURSOR + "[a] go on?" + live.HIDE_CURSOR)
    after = out[asked:].split(live.HIDE_CURSOR, 1)[1]
    assert after.startswith("p · ")  # the next frame starts afresh, below the question
    assert out.endswith("\n" + live.SHOW_CURSOR)


def test_ctrl_c_leaves_the_cursor_shown() -> None:
    stream = FakeTerminal()
    table = live.LiveTable(Board("p", clock=Clock()), stream, lambda: (80, 24))
    try:
        with table:
            table.begin("f1", "p", ["a"], 1)
            table.started("a")
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert stream.getvalue().endswith(live.SHOW_CURSOR)


def test_the_cli_on_a_terminal_draws_the_live_table_then_the_summary(
    fleet: Project,  # noqa: F811
) -> None:
    fleet.playbook(SLOW.format(seconds=2), "slow.yaml")
    term = Terminal(
        ["run", "playbooks/slow.yaml", "-t", "all", "--forks", "4"],
        fleet.root,
        {"COLUMNS": "80", "LINES": "24"},
    )
    term.expect(r"running \(4\), longest first:")
    term.expect(r"t\d\s+\d+\.\ds\s+step 1/1 wait")
    assert term.wait() == 0, term.text
    raw = term.raw.decode()
    assert raw.rindex(live.SHOW_CURSOR) > raw.rindex(live.HIDE_CURSOR)  # the cursor is back
    assert re.search(r"\x1b\[\d+A\x1b\[J", raw), "redrawn in place"
    text = term.text
    assert "4/4 done" in text and "finished" in text
    assert re.search(r"ok 4\s+gate_failed 0\s+failed 0", text)
    assert "fleet run " in text  # then the summary, as without the table
    tail = text[text.rindex("finished") :]
    assert "4 target(s): 4 ok" in tail and "runbook show" in tail, tail
    for line in text.splitlines():
        assert columns(line) <= 80, line


ASKING = """name: asking
kind: check
steps:
  - name: wait
    query: SELECT pg_sleep(0.5) IS NULL AS slept
  - name: go on
    confirm: {prompt: Go on here?}
"""


def test_a_confirm_question_is_asked_below_the_live_table(fleet: Project) -> None:  # noqa: F811
    fleet.playbook(ASKING, "asking.yaml")
    term = Terminal(
        ["run", "playbooks/asking.yaml", "-t", "all", "--forks", "2"],
        fleet.root,
        {"COLUMNS": "80", "LINES": "24", "RUNBOOK_OPERATOR": "alice"},
    )
    for asked in range(1, 5):  # each target asks in turn, naming itself, below the table
        term.expect(rf"(?s)(\[t\d\] Go on here\?.*?){{{asked}}}")
        term.type("y")
    assert term.wait() == 0, term.text
    assert "4/4 done" in term.text and "4 target(s): 4 ok" in term.text
