"""Checks of meaning, beyond the schema's shape: names, templates, files, cron.

Each check returns Problems located at the key or value at fault. They run on
model objects built by the loader, so the data is known to have the right shape.
"""

from __future__ import annotations

import difflib
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook import actions, loader, sqltext, template
from runbook.actions.base import ANY, RESULT, Field
from runbook.errors import Problem
from runbook.model import Inventory, Loc, Playbook, Scale, Step
from runbook.template import Kind
from runbook.yamlsrc import DataPath, Document, format_path

BUILTIN_VARS = frozenset({"target", "run", "playbook", "now"})
_WHEN = Field(("when",), Kind.EXPR)
_UNTIL = Field(("until",), Kind.EXPR, RESULT)
_GATE_FIELDS = (
    Field(("that",), Kind.EXPR, RESULT),
    Field(("message",), Kind.TEXT, RESULT),
)


@dataclass
class Context:
    """What the checks of one playbook know about the project around it."""

    inventory: Inventory | None
    root: Path
    cache: dict[Path, tuple[Playbook | None, list[Problem]]] = field(default_factory=dict)

    @property
    def scale(self) -> Scale:
        return self.inventory.scale if self.inventory else Scale.default()

    def load(self, path: Path) -> tuple[Playbook | None, list[Problem]]:
        key = path.resolve()
        if key not in self.cache:
            self.cache[key] = loader.load_playbook(key, loader.cache_dir(self.root))
        return self.cache[key]


def _at(loc: Loc, message: str, code: str, pointer: str | None = None) -> Problem:
    return Problem(
        loc.file, loc.line, loc.col, loc.pointer if pointer is None else pointer, message, code
    )


def _doc_at(
    doc: Document, path: DataPath, message: str, code: str, *, key: bool = False
) -> Problem:
    where = doc.position(path, key=key)
    return Problem(doc.path, where.line, where.col, format_path(path), message, code)


def _suggest(name: str, options: Iterable[str]) -> str:
    hint = difflib.get_close_matches(name, sorted(options), n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def _get(data: Any, path: DataPath) -> Any:
    for part in path:
        data = data[part]
    return data


# --- playbooks ----------------------------------------------------------------


def check_playbook(pb: Playbook, ctx: Context) -> list[Problem]:
    assert pb.doc is not None
    problems: list[Problem] = []
    problems += _duplicate_ids(pb)
    problems += _inventory_refs(pb, ctx)
    problems += _schedule(pb)
    problems += _severities(pb, ctx.scale)
    problems += _step_rules(pb, ctx)
    problems += _TemplateCheck(pb, ctx).run()
    return problems


def _duplicate_ids(pb: Playbook) -> Iterator[Problem]:
    first: dict[str, Step] = {}
    for step in pb.walk():
        if step.id is None:
            continue
        if step.id in first:
            other = first[step.id].loc
            yield _at(
                step.loc,
                f"duplicate step id {step.id!r} (already used at line {other.line}); ids must be unique",
                "duplicate-id",
                format_path((*step.data_path, "id")),
            )
        else:
            first[step.id] = step


def _inventory_refs(pb: Playbook, ctx: Context) -> Iterator[Problem]:
    inv = ctx.inventory
    if inv is None:
        return
    doc = pb.doc
    assert doc is not None
    names = set(inv.targets) | set(inv.groups)
    for i, name in enumerate(pb.targets):
        if name not in names:
            path: DataPath = (
                ("targets", i) if isinstance(doc.data.get("targets"), list) else ("targets",)
            )
            yield _doc_at(
                doc,
                path,
                f"unknown target or group {name!r}{_suggest(name, names)}",
                "unknown-target",
            )
    if pb.schedule and pb.schedule.targets and pb.schedule.targets not in names:
        name = pb.schedule.targets
        yield _doc_at(
            doc,
            ("schedule", "targets"),
            f"unknown target or group {name!r}{_suggest(name, names)}",
            "unknown-target",
        )
    if pb.escalation and pb.escalation not in inv.policies:
        path = (
            ("escalation",) if isinstance(doc.data["escalation"], str) else ("escalation", "policy")
        )
        yield _doc_at(
            doc,
            path,
            f"unknown escalation policy {pb.escalation!r}{_suggest(pb.escalation, inv.policies)}",
            "unknown-policy",
        )
    for step in pb.walk():
        if step.kind == "notify":
            for i, channel in enumerate(step.body["channels"]):
                if channel not in inv.channels:
                    yield _doc_at(
                        doc,
                        (*step.data_path, "notify", "channels", i),
                        f"unknown channel {channel!r}{_suggest(channel, inv.channels)}",
                        "unknown-channel",
                    )
        if (
            step.kind == "escalate"
            and "policy" in step.body
            and step.body["policy"] not in inv.policies
        ):
            policy = step.body["policy"]
            yield _doc_at(
                doc,
                (*step.data_path, "escalate", "policy"),
                f"unknown escalation policy {policy!r}{_suggest(policy, inv.policies)}",
                "unknown-policy",
            )


def check_cron(expr: str) -> str | None:
    """Why a cron expression is invalid, or None."""
    from croniter import croniter

    fields = expr.split()
    if len(fields) != 5 and not expr.startswith("@"):
        return f"cron expression needs 5 fields (minute hour day month weekday), got {len(fields)}"
    if not croniter.is_valid(expr):
        return f"invalid cron expression {expr!r}"
    return None


def _schedule(pb: Playbook) -> Iterator[Problem]:
    if pb.schedule is None or pb.doc is None:
        return
    path: DataPath = (
        ("schedule",) if isinstance(pb.doc.data["schedule"], str) else ("schedule", "cron")
    )
    why = check_cron(pb.schedule.cron)
    if why:
        yield _doc_at(pb.doc, path, why, "cron")
    if pb.schedule.timezone:
        try:
            zoneinfo.ZoneInfo(pb.schedule.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            yield _doc_at(
                pb.doc,
                ("schedule", "timezone"),
                f"unknown time zone {pb.schedule.timezone!r}",
                "timezone",
            )


def _severity_refs(pb: Playbook) -> Iterator[tuple[DataPath, str]]:
    doc = pb.doc
    assert doc is not None
    if pb.escalation_threshold:
        yield ("escalation", "threshold"), pb.escalation_threshold
    for step in pb.walk():
        base = step.data_path
        raw = _get(doc.data, base)
        gate = raw.get("gate")
        for i, g in enumerate(gate if isinstance(gate, list) else [gate] if gate else []):
            if "severity" in g:
                yield (
                    ((*base, "gate", i) if isinstance(gate, list) else (*base, "gate"))
                    + ("severity",),
                    g["severity"],
                )
        if step.kind == "classify":
            for i, t in enumerate(step.body["thresholds"]):
                yield (*base, "classify", "thresholds", i, "severity"), t["severity"]
            for key in ("default", "fail_at"):
                if key in step.body:
                    yield (*base, "classify", key), step.body[key]
        if step.kind in ("notify", "escalate") and "severity" in step.body:
            yield (*base, step.kind, "severity"), step.body["severity"]


def _severities(pb: Playbook, scale: Scale) -> Iterator[Problem]:
    assert pb.doc is not None
    for path, name in _severity_refs(pb):
        if scale.get(name) is None:
            yield _doc_at(
                pb.doc,
                path,
                f"unknown severity {name!r}{_suggest(name.upper(), scale.names())}; "
                f"the scale is {', '.join(scale.names())}",
                "unknown-severity",
            )


def _step_rules(pb: Playbook, ctx: Context) -> Iterator[Problem]:
    doc = pb.doc
    assert doc is not None
    sql_root = (ctx.root / "sql").resolve()
    for step in pb.walk():
        action = actions.REGISTRY[step.kind]
        if step.rollback and not action.may_write(step):
            hint = " (a query that writes says `writes: true`)" if step.kind == "query" else ""
            yield _doc_at(
                doc,
                (*step.data_path, "rollback"),
                f"a {step.kind} step cannot change anything, so it has nothing to roll back{hint}",
                "rollback-on-read",
                key=True,
            )
        if pb.kind == "check" and action.may_write(step) and step.kind != "transaction":
            yield _at(
                step.loc,
                f"playbook is kind: check (read-only) but this {step.kind} step may write; "
                "set `writes: false` if it only reads, or make the playbook kind: change",
                "write-in-check",
            )
        if step.kind == "sql_file":
            yield from _sql_file(doc, step, sql_root)
        if step.kind == "include":
            yield from _include(pb, step, ctx)
        if step.kind == "transaction":
            yield from _transaction(doc, step)
        elif step.kind in ("sql", "query") and not step.options.get("autocommit"):
            statement = sqltext.needs_autocommit(step.body)
            if statement:
                yield _doc_at(
                    doc,
                    (*step.data_path, step.kind),
                    f"`{statement}` cannot run inside a transaction; mark the step `autocommit: true`",
                    "needs-autocommit",
                )


def _transaction(doc: Document, step: Step) -> Iterator[Problem]:
    for child in step.children:
        if child.options.get("autocommit"):
            yield _doc_at(
                doc,
                (*child.data_path, "autocommit"),
                "a step with autocommit: true cannot be inside a transaction block; move it out",
                "autocommit-in-transaction",
                key=True,
            )
        elif child.kind in ("sql", "query"):
            statement = sqltext.needs_autocommit(child.body)
            if statement:
                yield _doc_at(
                    doc,
                    (*child.data_path, child.kind),
                    f"`{statement}` cannot run inside a transaction block; move the step out "
                    "and mark it autocommit: true",
                    "needs-autocommit",
                )
        elif child.kind in ("transaction", "include", "confirm"):
            yield _at(
                child.loc,
                f"a {child.kind} step cannot be inside a transaction block",
                "in-transaction",
            )


def sql_file_path(root: Path, name: str) -> Path:
    return (root / "sql" / name).resolve()


def _sql_file(doc: Document, step: Step, sql_root: Path) -> Iterator[Problem]:
    target = (sql_root / step.body).resolve()
    path = (*step.data_path, "sql_file")
    if not target.is_relative_to(sql_root):
        yield _doc_at(
            doc,
            path,
            f"sql_file {step.body!r} points outside the project's sql/ folder",
            "sql-file-outside",
        )
    elif not target.is_file():
        yield _doc_at(
            doc,
            path,
            f"sql_file {step.body!r} does not exist in the project's sql/ folder",
            "sql-file-missing",
        )


def _include(pb: Playbook, step: Step, ctx: Context) -> Iterator[Problem]:
    assert pb.doc is not None
    target = (pb.path.parent / step.body).resolve()
    path = (*step.data_path, "include")
    if not target.is_file():
        yield _doc_at(
            pb.doc, path, f"included playbook {step.body!r} does not exist", "include-missing"
        )
        return
    if _reaches(target, pb.path, ctx, set()):
        yield _doc_at(
            pb.doc,
            path,
            f"include cycle: {step.body!r} leads back to this playbook",
            "include-cycle",
        )
        return
    included, problems = ctx.load(target)
    if included is None:
        yield _doc_at(
            pb.doc,
            path,
            f"included playbook {step.body!r} is invalid ({len(problems)} problem(s))",
            "include-invalid",
        )
        yield from problems
        return
    missing = [
        name for name, value in included.vars.items() if value is None and name not in step.vars
    ]
    for name in missing:
        yield _doc_at(
            pb.doc,
            path,
            f"included playbook needs variable {name!r}; give it in this step's vars",
            "include-var",
        )


def _reaches(start: Path, goal: Path, ctx: Context, seen: set[Path]) -> bool:
    """Whether playbook `start` includes `goal`, directly or through others."""
    if start == goal:
        return True
    if start in seen:
        return False
    seen.add(start)
    playbook, _ = ctx.load(start)
    if playbook is None:
        return False
    return any(
        _reaches((start.parent / step.body).resolve(), goal, ctx, seen)
        for step in playbook.walk()
        if step.kind == "include"
    )


def registered_names(pb: Playbook, ctx: Context, seen: frozenset[Path] = frozenset()) -> set[str]:
    """Names a playbook defines for what runs after it (registers, set)."""
    names: set[str] = set()
    seen = seen | {pb.path}
    for step in pb.walk():
        if step.register:
            names.add(step.register)
        if step.kind == "set":
            names.update(step.body)
        if step.kind == "include":
            included, _ = ctx.load((pb.path.parent / step.body).resolve())
            if included is not None and included.path not in seen:
                names |= registered_names(included, ctx, seen)
    return names


class _TemplateCheck:
    """Syntax and names of every template, in the order the steps run."""

    def __init__(self, pb: Playbook, ctx: Context) -> None:
        assert pb.doc is not None
        self.pb = pb
        self.doc: Document = pb.doc
        self.ctx = ctx
        self.problems: list[Problem] = []
        target_vars = (
            {n for t in ctx.inventory.targets.values() for n in t.vars} if ctx.inventory else set()
        )
        self.base = set(pb.vars) | target_vars | BUILTIN_VARS
        self.definers: dict[str, Step] = {}
        for step in pb.walk():
            for name in self._defines(step):
                self.definers.setdefault(name, step)

    def _defines(self, step: Step) -> set[str]:
        names = {step.register} if step.register else set()
        if step.kind == "set":
            names |= set(step.body)
        if step.kind == "include":
            included, _ = self.ctx.load((self.pb.path.parent / step.body).resolve())
            if included is not None:
                names |= registered_names(included, self.ctx, frozenset({self.pb.path}))
        return names

    def run(self) -> list[Problem]:
        known = set(self.base)
        for step in self.pb.steps:
            self._step(step, known)
        return self.problems

    def _step(self, step: Step, known: set[str]) -> None:
        """Check one step's templates; `known` grows by what the step defines.

        Names a step adds for itself alone (its vars, `result`, its register) are
        passed as `extra` rather than copied into `known`: no set is copied per
        step, so checking stays linear in the number of steps.
        """
        raw = _get(self.doc.data, step.data_path)
        local = frozenset(step.vars)
        self._field(step.data_path, raw, _WHEN, known, local)
        if step.vars:
            for key in step.vars:
                self._field(
                    (*step.data_path, "vars"),
                    raw["vars"],
                    Field((key,), Kind.TEXT),
                    known,
                    frozenset(),
                )
        for f in actions.REGISTRY[step.kind].TEMPLATES:
            self._field(step.data_path, raw, f, known, local)
        if step.kind == "sql_file":
            self._sql_file(step, known | local)
        after = local | {step.register} if step.register else local
        if "until" in raw:
            self._field(step.data_path, raw, _UNTIL, known, after)
        gate = raw.get("gate")
        if gate is not None:
            items = gate if isinstance(gate, list) else [gate]
            for i, g in enumerate(items):
                base = (
                    (*step.data_path, "gate", i)
                    if isinstance(gate, list)
                    else (*step.data_path, "gate")
                )
                for f in _GATE_FIELDS:
                    self._field(base, g, f, known, after)
        for child in step.children:
            self._step(child, known)  # names a transaction's steps define stay defined after it
        if step.rollback:
            undo = known | after
            for rollback_step in step.rollback:
                self._step(rollback_step, undo)
        known |= self._defines(step)

    def _field(
        self, base: DataPath, data: Any, f: Field, known: set[str], extra: frozenset[str]
    ) -> None:
        for path, source in _matches(data, f.path):
            full = (*base, *path)
            values = source if isinstance(source, list) else [source]
            for i, value in enumerate(values):
                if not isinstance(value, str):
                    continue
                where = (*full, i) if isinstance(source, list) else full
                self._check(where, value, f.kind, known, extra | f.names if f.names else extra)

    def _check(
        self, path: DataPath, source: str, kind: Kind, known: set[str], extra: frozenset[str]
    ) -> None:
        if kind is not Kind.EXPR and not template.is_template(source):
            return
        error = template.syntax_error(kind, source)
        if error:
            line, col = self._inner_position(path, error[0])
            self.problems.append(
                Problem(self.doc.path, line, col, format_path(path), error[1], "template-syntax")
            )
            return
        missing = [
            n for n in template.names_used(kind, source) if n not in known and n not in extra
        ]
        for name in sorted(missing):
            self.problems.append(_doc_at(self.doc, path, self._undefined(name), "undefined"))
        if kind is Kind.SQL:
            shape = template.shape_error(source)
            if shape:
                self.problems.append(_doc_at(self.doc, path, shape, "sql-shape"))

    def _undefined(self, name: str) -> str:
        definer = self.definers.get(name)
        if definer is not None:
            return f"{name!r} is used before step {definer.name!r} (line {definer.loc.line}) defines it"
        options = self.base | set(self.definers)
        return f"{name!r} is undefined: not a variable of the playbook or its targets, and no step registers it{_suggest(name, options)}"

    def _inner_position(self, path: DataPath, inner_line: int) -> tuple[int, int]:
        """File position of line `inner_line` of the string at `path`."""
        start = self.doc.position(path)
        style = self.doc.styles.get(path)
        line = start.line + inner_line if style in ("|", ">") else start.line + inner_line - 1
        if line == start.line:
            return line, start.col
        lines = self.doc.text.splitlines()
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return line, len(text) - len(text.lstrip(" ")) + 1

    def _sql_file(self, step: Step, known: set[str]) -> None:
        target = sql_file_path(self.ctx.root, step.body)
        if not target.is_file() or not target.is_relative_to((self.ctx.root / "sql").resolve()):
            return
        source = target.read_text("utf-8", errors="replace")
        shown = loader.display_path(target)
        error = template.syntax_error(Kind.SQL, source)
        if error:
            self.problems.append(Problem(shown, error[0], 1, "", error[1], "template-syntax"))
            return
        for name in sorted(template.names_used(Kind.SQL, source) - known):
            self.problems.append(Problem(shown, 1, 1, "", self._undefined(name), "undefined"))
        shape = template.shape_error(source)
        if shape:
            self.problems.append(Problem(shown, 1, 1, "", shape, "sql-shape"))


def _matches(data: Any, path: tuple[str, ...]) -> Iterator[tuple[DataPath, Any]]:
    if not path:
        yield (), data
        return
    head, rest = path[0], path[1:]
    if head == ANY:
        if isinstance(data, dict):
            items: Iterable[tuple[str | int, Any]] = data.items()
        elif isinstance(data, list):
            items = enumerate(data)
        else:
            return
        for key, value in items:
            for sub, found in _matches(value, rest):
                yield (key, *sub), found
    elif isinstance(data, dict) and head in data:
        for sub, found in _matches(data[head], rest):
            yield (head, *sub), found


# --- inventories --------------------------------------------------------------


def check_inventory(inv: Inventory) -> list[Problem]:
    doc = inv.doc
    assert doc is not None
    problems: list[Problem] = []
    names = set(inv.targets) | set(inv.groups)
    if inv.default_target and inv.default_target not in names:
        problems.append(
            _doc_at(
                doc,
                ("default_target",),
                f"unknown target or group {inv.default_target!r}{_suggest(inv.default_target, names)}",
                "unknown-target",
            )
        )
    for group, members in inv.groups.items():
        if group in inv.targets:
            problems.append(
                _doc_at(
                    doc,
                    ("groups", group),
                    f"group {group!r} has the name of a target",
                    "name-clash",
                    key=True,
                )
            )
        raw = doc.data["groups"][group]
        for i, member in enumerate(members):
            if member not in inv.targets:
                path: DataPath = (
                    ("groups", group, "targets", i)
                    if isinstance(raw, dict)
                    else ("groups", group, i)
                )
                problems.append(
                    _doc_at(
                        doc,
                        path,
                        f"unknown target {member!r}{_suggest(member, inv.targets)}",
                        "unknown-target",
                    )
                )
    problems += _scale_problems(inv)
    problems += _policy_problems(inv)
    if inv.journal.backend == "postgres" and inv.journal.dsn is None:
        problems.append(_doc_at(doc, ("journal",), "a postgres journal needs a dsn", "journal"))
    return problems


def _scale_problems(inv: Inventory) -> Iterator[Problem]:
    doc = inv.doc
    assert doc is not None
    seen: dict[str, int] = {}
    for i, level in enumerate(inv.scale.levels):
        if "severities" not in doc.data:
            return
        for name in (level.name, *level.aliases):
            if name.upper() in seen:
                yield _doc_at(
                    doc,
                    ("severities", i),
                    f"severity name {name!r} is used twice in the scale",
                    "duplicate-severity",
                )
            seen[name.upper()] = i


def _policy_problems(inv: Inventory) -> Iterator[Problem]:
    doc = inv.doc
    assert doc is not None
    scale = inv.scale
    for name, policy in inv.policies.items():
        base: DataPath = ("policies", name)
        if scale.get(policy.threshold) is None and "threshold" in doc.data["policies"][name]:
            yield _doc_at(
                doc,
                (*base, "threshold"),
                f"unknown severity {policy.threshold!r}; the scale is {', '.join(scale.names())}",
                "unknown-severity",
            )
        for sev, sp in policy.severities.items():
            if scale.get(sev) is None:
                yield _doc_at(
                    doc,
                    (*base, "severities", sev),
                    f"unknown severity {sev!r}; the scale is {', '.join(scale.names())}",
                    "unknown-severity",
                    key=True,
                )
            previous = -1.0
            for i, level in enumerate(sp.levels):
                lpath = (*base, "severities", sev, "levels", i)
                if level.after < previous:
                    yield _doc_at(
                        doc,
                        (*lpath, "after"),
                        "levels must be in order of their delay",
                        "level-order",
                    )
                previous = level.after
                for j, recipient in enumerate(level.notify):
                    if recipient.channel not in inv.channels:
                        raw = doc.data["policies"][name]["severities"][sev]["levels"][i]["notify"][
                            j
                        ]
                        rpath = (
                            (*lpath, "notify", j)
                            if isinstance(raw, str)
                            else (*lpath, "notify", j, "channel")
                        )
                        yield _doc_at(
                            doc,
                            rpath,
                            f"unknown channel {recipient.channel!r}{_suggest(recipient.channel, inv.channels)}",
                            "unknown-channel",
                        )
