"""What the operator sees: a line per step as it ends, result tables, a summary.

On a terminal (rich): a spinner with the elapsed time while a step runs, colours,
tables. Elsewhere: the same lines, plain and colourless. `--format json` prints one
document at the end and `--junit` writes a file; neither prints while running.
Only this module and the CLI print.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import IO, Any
from xml.etree import ElementTree

from runbook import tables
from runbook.outcome import STATUS_TEXT, Outcome, RunOutcome, Status
from runbook.plan import Plan, PlannedStep
from runbook.shown import safe

MAX_OUTPUT_LINES = 10
MAX_TABLE_ROWS = tables.MAX_ROWS

SYMBOLS = {
    Status.OK: "✓",
    Status.FAILED: "✗",
    Status.GATE_FAILED: "✗",
    Status.SKIPPED: "-",
    Status.NOT_RUN: "·",
    Status.ROLLED_BACK: "↺",
    Status.UNKNOWN: "?",
    Status.DECLINED: "✋",
    Status.AWAITING_APPROVAL: "⏸",
    Status.RUNNING: "…",
}
_BAD = (Status.FAILED, Status.GATE_FAILED, Status.UNKNOWN, Status.DECLINED)
COLOURS = {
    Status.OK: "green",
    Status.FAILED: "red",
    Status.GATE_FAILED: "red",
    Status.SKIPPED: "dim",
    Status.NOT_RUN: "dim",
    Status.ROLLED_BACK: "yellow",
    Status.UNKNOWN: "magenta",
    Status.DECLINED: "yellow",
    Status.AWAITING_APPROVAL: "yellow",
    Status.RUNNING: "cyan",
}


def shown(text: str) -> str:
    """Text from outside (a server's message, a value, a name) shown, never
    obeyed: each line's control characters written as escapes (runbook.shown)."""
    if text.isprintable():
        return text
    return "\n".join(safe(line) for line in text.split("\n"))


def duration(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.1f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    return f"{int(ms // 60_000)}m{(ms % 60_000) / 1000:04.1f}s"


def step_line(outcome: Outcome) -> str:
    status = outcome.status
    tail = STATUS_TEXT[status]
    if status is not Status.SKIPPED and status is not Status.NOT_RUN:
        tail += ", " + duration(outcome.duration_ms)
    if outcome.severity:
        tail += ", " + outcome.severity
    if outcome.note:
        tail += ", " + outcome.note
    if outcome.attempts > 1:
        tail += f", {outcome.attempts} attempts"
    line = f"{SYMBOLS[status]} {outcome.number.rjust(4)}  {outcome.name}  [{tail}]"
    return f"{line} {outcome.item_label}" if outcome.item_label else line


def detail_lines(outcome: Outcome, verbose: bool = False) -> list[str]:
    if (
        outcome.status is Status.OK
        and not outcome.notices
        and outcome.kind != "shell"
        and not verbose
    ):
        return []  # the common case: nothing to add to the step's line
    lines = []
    if outcome.status in _BAD and outcome.reason:
        lines.append(
            f"{'gate' if outcome.status is Status.GATE_FAILED else 'error'}: {outcome.reason}"
        )
        if outcome.sqlstate:
            lines[-1] += f" [SQLSTATE {outcome.sqlstate}]"
    elif outcome.status in (Status.SKIPPED, Status.NOT_RUN, Status.ROLLED_BACK) and outcome.reason:
        lines.append(outcome.reason)
    if outcome.status is Status.SKIPPED and outcome.rendered:
        lines.append("would run:")
        lines.extend("  " + line for line in outcome.rendered.splitlines())
    elif verbose and outcome.rendered:
        lines.append("ran:")
        lines.extend("  " + line for line in outcome.rendered.splitlines())
        if outcome.params:  # the bound values, secrets already masked
            shown = ", ".join(f"${i} = {_bound(v)}" for i, v in enumerate(outcome.params, 1))
            lines.append(f"with: {shown}")
    lines.extend(client_lines(outcome, verbose))
    lines.extend(f"notice: {n}" for n in outcome.notices[:5])
    lines.extend(output_lines(outcome))
    return lines


def _bound(value: Any) -> str:
    """A bound value as a person reads it: text quoted, the rest as JSON writes it."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return json.dumps(value, default=str, ensure_ascii=False)


def plan_lines(the_plan: Plan, writes: frozenset[int]) -> list[str]:
    """`--list-steps`: the plan as it would run, with tags and what may write."""
    pb = the_plan.playbook
    lines = [f"{pb.name} ({pb.kind}) on {the_plan.target.name}: {the_plan.size} step(s)"]
    for ps in the_plan.walk():
        depth = ps.number.count(".")
        tags = ", ".join(sorted(ps.step.tags)) or "-"
        effect = "writes" if ps.index in writes else "reads"
        if ps.kind in ("include", "transaction"):
            effect = ps.kind
        undo = f"; rollback: {', '.join(r.number for r in ps.rollback)}" if ps.rollback else ""
        if ps.step.loop is not None:
            undo += f"; loop: {_loop_shown(ps.step.loop)} as {ps.step.loop_var}"
        skipped = "" if ps.selected else f"  [skipped: {ps.skip_reason}]"
        lines.append(
            f"{ps.number:>{4 + 2 * depth}}  {ps.name:<{40 - 2 * depth}} {ps.kind:<12} "
            f"tags: {tags:<16} {effect}{undo}{skipped}"
        )
    return lines


def _loop_shown(loop: Any) -> str:
    """A loop as written, on one line, cut short."""
    text = loop if isinstance(loop, str) else json.dumps(loop, default=str, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def client_lines(outcome: Outcome, verbose: bool) -> list[str]:
    """Which PostgreSQL client programs a shell step had first on PATH (with -v),
    and always a mismatch with the server's version."""
    client = (outcome.result or {}).get("client") if outcome.kind == "shell" else None
    if not isinstance(client, dict):
        return []
    lines = []
    if verbose and client.get("bin"):
        lines.append(
            f"client programs: PostgreSQL {client.get('version')} from {client['bin']} "
            f"({client.get('source')})"
        )
    if client.get("note"):
        lines.append(f"warning: {client['note']}")
    return lines


def output_lines(outcome: Outcome) -> list[str]:
    """The end of what a shell step printed: an operator reads it like a query's rows."""
    result = outcome.result or {}
    if outcome.kind != "shell" or not result.get("stdout"):
        return []
    printed = result["stdout"].rstrip("\n").splitlines()
    shown = [f"| {line}" for line in printed[-MAX_OUTPUT_LINES:]]
    if len(printed) > MAX_OUTPUT_LINES:
        shown.insert(0, f"({len(printed) - MAX_OUTPUT_LINES} earlier line(s) of output)")
    return shown


def table_of(outcome: Outcome) -> tables.Table | None:
    """A query step's rows, for the terminal or the log (runbook.tables)."""
    result = outcome.result or {}
    if outcome.kind not in ("query", "wait") or not result.get("rows"):
        return None
    return tables.table_of(result, outcome.shown_rows)


def notification_lines(run: RunOutcome) -> list[str]:
    lines = []
    for event in run.notifications:
        deliveries = event.get("deliveries", [])
        sent = "; ".join(
            f"{d['channel']} {d['status']}"
            + (
                f" after {d['attempts']} attempt(s): {d.get('error')}"
                if d["status"] in ("failed", "pending") and d.get("error")
                else ""
            )
            for d in deliveries
        )
        if "incident" in event:
            head = f"incident {event['incident']} {event['state']} ({event['severity']}, {event['key']})"
        else:
            head = f"notified: {event.get('notify')}"
        lines.append(head + (f": {sent}" if sent else ""))
    return lines


def summary_line(run: RunOutcome) -> str:
    counts = run.counts()
    shown = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items() if n)
    gates = [g for s in run.steps for g in s.gates]
    failed = sum(1 for g in gates if not g.passed)
    severity = f", severity {run.severity}" if run.severity else ""
    # A playbook without gates has nothing to say about them ("gates 0/0" is noise).
    gated = f"; gates {len(gates) - failed}/{len(gates)} passed" if gates else ""
    return (
        f"{run.playbook} on {run.target}: {run.status.value.upper()} (exit {run.exit_code}) — "
        f"{shown}{gated}{severity}"
    )


class PlainReporter:
    """Colourless lines, for pipes, files, cron and CI."""

    def __init__(
        self,
        out: IO[str] | None = None,
        quiet: bool = False,
        verbose: bool = False,
        expanded: bool = False,
    ) -> None:
        self.out = out or sys.stdout
        self.quiet = quiet
        self.expanded = expanded  # --expanded: every result one field per line
        # -v: what each step sent (SQL, command) and the client programs it used.
        self.verbose = verbose

    def write(self, text: str) -> None:
        self.out.write(shown(text) + "\n")

    def run_started(self, plan: Plan, run_id: str) -> None:
        if not self.quiet:
            self.write(
                f"run {run_id}: {plan.playbook.name} ({plan.playbook.kind}) on {plan.target.name}, {plan.size} step(s)"
            )

    def step_started(self, ps: PlannedStep) -> None:
        pass

    def step_finished(self, outcome: Outcome) -> None:
        if self.quiet and outcome.status not in _BAD:
            return
        # One write per step: the text is built first (this runs once per step,
        # on the run's own thread, so it is kept lean).
        lines = [step_line(outcome)]
        lines.extend("       " + line for line in detail_lines(outcome, self.verbose))
        table = None if self.quiet else table_of(outcome)
        if table:
            # Not a terminal: psql's rule, expanded only when asked.
            lines += tables.lines_for(table, self.expanded, None)
        self.out.write(shown("\n".join(lines)) + "\n")

    def run_finished(self, outcome: RunOutcome) -> None:
        for line in notification_lines(outcome):
            self.write(line)
        self.write(summary_line(outcome))
        self.write(f"run id {outcome.run_id}; journal {outcome.journal}")


class RichReporter(PlainReporter):
    """A terminal: colours, tables, and a spinner with elapsed time per running step."""

    def __init__(
        self, console: Any, quiet: bool = False, verbose: bool = False, expanded: bool = False
    ) -> None:
        super().__init__(quiet=quiet, verbose=verbose, expanded=expanded)
        self.console = console
        self._status: Any = None
        self._started = 0.0

    def run_started(self, plan: Plan, run_id: str) -> None:
        if not self.quiet:
            self.console.print(
                f"[bold]{plan.playbook.name}[/] ({plan.playbook.kind}) on [bold]{plan.target.name}[/] "
                f"— {plan.size} step(s), run [cyan]{run_id}[/]",
                highlight=False,
            )

    def step_started(self, ps: PlannedStep) -> None:
        if ps.kind in ("include", "transaction"):
            return
        self._stop()
        if ps.kind == "confirm":
            # It waits on a person: a spinner would redraw over the question
            # and the answer typed under it.
            return
        self._started = time.monotonic()
        label = f"{ps.number} {ps.name}"
        self._status = self.console.status(label, spinner="dots")
        self._status.start()
        self._label = label
        # rich refreshes the spinner itself; the elapsed time is updated by a renderable.
        self._status.update(_Elapsed(label, self._started))

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def step_finished(self, outcome: Outcome) -> None:
        self._stop()
        if self.quiet and outcome.status not in _BAD:
            return
        from rich.markup import escape
        from rich.table import Table

        colour = COLOURS[outcome.status]
        self.console.print(f"[{colour}]{escape(shown(step_line(outcome)))}[/]", highlight=False)
        for line in detail_lines(outcome, self.verbose):
            self.console.print(f"       [{colour}]{escape(shown(line))}[/]", highlight=False)
        table = None if self.quiet else table_of(outcome)
        if table is None:
            return
        if self.expanded or tables.natural_width(table) > self.console.width:
            # Too wide for this terminal: one field per line (psql's \x auto).
            for line in tables.expanded_lines(table):
                self.console.print(escape(shown(line)), highlight=False)
            return
        grid = Table(
            *table.columns[: tables.MAX_COLUMNS],
            show_header=True,
            header_style="bold",
            box=None,
            padding=(0, 1),
            pad_edge=False,
        )
        for row in table.rows:
            grid.add_row(*(escape(shown(c)) for c in row[: tables.MAX_COLUMNS]))
        from rich.padding import Padding

        self.console.print(Padding(grid, (0, 0, 0, 7)))
        for line in tables.footer(table, expanded=False):
            self.console.print(escape(shown(line)), highlight=False)

    def run_finished(self, outcome: RunOutcome) -> None:
        self._stop()
        colour = "green" if outcome.exit_code == 0 else "red"
        from rich.markup import escape

        for line in notification_lines(outcome):
            failed = "failed" in line
            self.console.print(
                f"[{'red' if failed else 'yellow'}]{escape(shown(line))}[/]", highlight=False
            )
        self.console.print(
            f"[bold {colour}]{escape(shown(summary_line(outcome)))}[/]", highlight=False
        )
        self.console.print(
            f"run id [cyan]{outcome.run_id}[/]; journal {escape(outcome.journal)}", highlight=False
        )


class _Elapsed:
    """A renderable: the running step's label and its elapsed time."""

    def __init__(self, label: str, started: float) -> None:
        self.label = label
        self.started = started

    def __rich__(self) -> str:
        from rich.markup import escape

        return f"{escape(self.label)} [dim]{time.monotonic() - self.started:.1f}s[/]"


class SilentReporter:
    """For --format json: nothing while running."""

    def run_started(self, plan: Plan, run_id: str) -> None:
        pass

    def step_started(self, ps: PlannedStep) -> None:
        pass

    def step_finished(self, outcome: Outcome) -> None:
        pass

    def run_finished(self, outcome: RunOutcome) -> None:
        pass


def json_document(runs: Sequence[RunOutcome], exit_code: int, fleet: str | None = None) -> str:
    """--format json: one document for all the runs (and the fleet run grouping them)."""
    head: dict[str, Any] = {"exit_code": exit_code}
    if fleet is not None:
        head["fleet"] = fleet
        head["counts"] = dict(Counter(r.status.value for r in runs))
    return json.dumps({**head, "runs": [r.serialize() for r in runs]}, indent=2, default=str)


def junit(runs: Sequence[RunOutcome]) -> bytes:
    """JUnit XML: a test suite per run, a test case per step; failed gates are failures."""
    suites = ElementTree.Element("testsuites")
    for run in runs:
        suite = ElementTree.SubElement(
            suites,
            "testsuite",
            name=f"{run.playbook}@{run.target}",
            tests=str(len(run.steps)),
            failures=str(sum(s.status in (Status.GATE_FAILED, Status.DECLINED) for s in run.steps)),
            errors=str(sum(s.status in (Status.FAILED, Status.UNKNOWN) for s in run.steps)),
            skipped=str(sum(s.status in (Status.SKIPPED, Status.NOT_RUN) for s in run.steps)),
            time=f"{run.duration_ms / 1000:.3f}",
            timestamp=run.started_at,
        )
        ElementTree.SubElement(
            ElementTree.SubElement(suite, "properties"), "property", name="run_id", value=run.run_id
        )
        for step in run.steps:
            case = ElementTree.SubElement(
                suite,
                "testcase",
                classname=f"{run.playbook}.{run.target}",
                name=f"{step.number} {step.name}",
                time=f"{step.duration_ms / 1000:.3f}",
            )
            if step.status is Status.GATE_FAILED:
                node = ElementTree.SubElement(
                    case, "failure", message=step.reason, type=step.severity or "gate"
                )
                node.text = "\n".join(f"{g.name}: {g.message}" for g in step.gates if not g.passed)
            elif step.status is Status.DECLINED:
                ElementTree.SubElement(case, "failure", message=step.reason, type="declined")
            elif step.status in (Status.FAILED, Status.UNKNOWN):
                node = ElementTree.SubElement(
                    case, "error", message=step.error or step.reason, type=step.sqlstate or "error"
                )
                node.text = step.rendered or ""
            elif step.status in (Status.SKIPPED, Status.NOT_RUN, Status.ROLLED_BACK):
                ElementTree.SubElement(
                    case, "skipped", message=f"{step.status.value}: {step.reason}"
                )
    data: bytes = ElementTree.tostring(suites, encoding="utf-8", xml_declaration=True)
    return data
