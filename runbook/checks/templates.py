"""Template checks: Jinja syntax, names and shapes, in the order the steps run.

Templates are read, never rendered: what the sandbox would refuse and, in SQL
fields (those an action declares Kind.SQL, and sql_file), every shape but the
allowed ones are found in the parsed tree (runbook.sqltemplate.templatesafe,
runbook.sqltemplate.templateshape)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from runbook import actions
from runbook.actions.base import ANY, RESULT, Field
from runbook.checks.common import (
    BUILTIN_VARS,
    Context,
    doc_at,
    get_path,
    read_sql_file,
    registered_names,
    sql_file_path,
    suggest,
)
from runbook.checks.loops import loop_names
from runbook.errors import Problem
from runbook.load import loader
from runbook.load.yamlsrc import DataPath, Document, format_path
from runbook.model import Playbook, Step
from runbook.sqltemplate import template
from runbook.sqltemplate.template import Kind

_WHEN = Field(("when",), Kind.EXPR)
_LOOP = Field(("loop",), Kind.TEXT)
_SKIP_MESSAGE = Field(("skip_message",), Kind.TEXT)
_UNTIL = Field(("until",), Kind.EXPR, RESULT)
_GATE_FIELDS = (
    Field(("that",), Kind.EXPR, RESULT),
    Field(("message",), Kind.TEXT, RESULT),
    Field(("severity",), Kind.TEXT, RESULT),
)


class TemplateCheck:
    """Syntax and names of every template, in the order the steps run."""

    def __init__(
        self,
        pb: Playbook,
        ctx: Context,
        outer: frozenset[str] = frozenset(),
        chain: frozenset[Path] = frozenset(),
    ) -> None:
        """`outer`: names an including playbook has defined where it includes this one."""
        assert pb.doc is not None
        self.pb = pb
        self.doc: Document = pb.doc
        self.ctx = ctx
        self.problems: list[Problem] = []
        self.missing: set[str] = set()  # names used where nothing defines them
        self.chain = chain | {pb.path.resolve()}
        target_vars = (
            {n for t in ctx.inventory.targets.values() for n in t.vars} if ctx.inventory else set()
        )
        self.base = set(pb.vars) | target_vars | BUILTIN_VARS | outer
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
        raw = get_path(self.doc.data, step.data_path)
        local = frozenset(step.vars)
        if step.loop is not None:
            # The list is made once, before the first iteration, in the step's
            # scope (its vars too); the item exists in the step's own templates
            # (when, the action, until, gates, rollback steps) and not after it.
            self._field(step.data_path, raw, _LOOP, known, local)
            local = local | loop_names(step.loop_var)
        self._field(step.data_path, raw, _WHEN, known, local)
        self._field(step.data_path, raw, _SKIP_MESSAGE, known, local)
        if step.vars:
            # Rendered once, before the loop: they do not see the item.
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
        self._shapes(step, raw)
        if step.kind == "sql_file":
            self._sql_file(step, known | local)
        if step.kind == "include":
            self._include(step, known | local)
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

    def _include(self, step: Step, known: set[str]) -> None:
        """The included steps' templates, with what they see there: everything
        defined so far, the include's vars and the included playbook's own."""
        path = (self.pb.path.parent / step.body).resolve()
        if path in self.chain:
            return  # an include cycle, reported by the step rules
        included, _ = self.ctx.load(path)
        if included is None:
            return  # reported by the step rules
        inner = TemplateCheck(included, self.ctx, frozenset(known), self.chain)
        for problem in inner.run():
            if problem not in self.problems:
                self.problems.append(problem)

    def _field(
        self, base: DataPath, data: Any, f: Field, known: set[str], extra: frozenset[str]
    ) -> None:
        for path, source in matches(data, f.path):
            for where, value in _strings((*base, *path), source):
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
            self.missing.add(name)
            self.problems.append(doc_at(self.doc, path, self._undefined(name), "undefined"))
        for inner_line, message, code in template.shape_faults(kind, source):
            line, col = self._inner_position(path, inner_line)
            self.problems.append(
                Problem(self.doc.path, line, col, format_path(path), message, code)
            )

    def _shapes(self, step: Step, raw: Any) -> None:
        """What an action refuses in the shape of its templates (a shell value
        that would not stay one word), at its place inside the string."""
        shape = getattr(actions.REGISTRY[step.kind], "shape_problems", None)
        if shape is None or not isinstance(raw, dict):
            return
        for inner, offset, message in shape(raw.get(step.kind)):
            path = (*step.data_path, step.kind, *inner)
            line, col = self._offset_position(path, get_path(self.doc.data, path), offset)
            self.problems.append(
                Problem(self.doc.path, line, col, format_path(path), message, "shell-shape")
            )

    def _offset_position(self, path: DataPath, source: str, offset: int) -> tuple[int, int]:
        """File position of character `offset` of the string at `path` (exact
        for plain strings, quoted ones on one line, and literal blocks)."""
        style, prefix = self.doc.style(path), source[:offset]
        if style == '"':  # one line, escapes as JSON writes them
            start = self.doc.position(path)
            return start.line, start.col + len(json.dumps(prefix, ensure_ascii=False)) - 1
        if style == "'":
            start = self.doc.position(path)
            return start.line, start.col + 1 + len(prefix.replace("'", "''"))
        inner_line = prefix.count("\n") + 1
        line, col = self._inner_position(path, inner_line)
        if inner_line == 1 and style not in ("|", ">"):
            return line, col + offset
        return line, col + offset - (prefix.rfind("\n") + 1)

    def _undefined(self, name: str) -> str:
        definer = self.definers.get(name)
        if definer is not None:
            return f"{name!r} is used before step {definer.name!r} (line {definer.loc.line}) defines it"
        options = self.base | set(self.definers)
        return f"{name!r} is undefined: not a variable of the playbook or its targets, and no step registers it{suggest(name, options)}"

    def _inner_position(self, path: DataPath, inner_line: int) -> tuple[int, int]:
        """File position of line `inner_line` of the string at `path`."""
        start = self.doc.position(path)
        style = self.doc.style(path)
        line = start.line + inner_line if style in ("|", ">") else start.line + inner_line - 1
        if line == start.line:
            return line, start.col
        lines = self.doc.text.splitlines()
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return line, len(text) - len(text.lstrip(" ")) + 1

    def _sql_file(self, step: Step, known: set[str]) -> None:
        source = read_sql_file(self.ctx.root, step.body)
        if source is None:
            return
        shown = loader.display_path(sql_file_path(self.ctx.root, step.body))
        error = template.syntax_error(Kind.SQL, source)
        if error:
            self.problems.append(Problem(shown, error[0], 1, "", error[1], "template-syntax"))
            return
        for name in sorted(template.names_used(Kind.SQL, source) - known):
            self.problems.append(Problem(shown, 1, 1, "", self._undefined(name), "undefined"))
        for line, message, code in template.shape_faults(Kind.SQL, source):
            self.problems.append(Problem(shown, line, 1, "", message, code))


def _strings(path: DataPath, value: Any) -> Iterator[tuple[DataPath, str]]:
    """Every string in a field's value, however deep (an `http: json:` body is
    rendered string by string, nested or not)."""
    stack: list[tuple[DataPath, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, list):
            stack.extend(((*where, i), v) for i, v in reversed(list(enumerate(item))))
        elif isinstance(item, dict):
            stack.extend(((*where, k), v) for k, v in reversed(list(item.items())))


def matches(data: Any, path: tuple[str, ...]) -> Iterator[tuple[DataPath, Any]]:
    """(path, value) of each place `path` names in `data` (ANY: every key or item)."""
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
            for sub, found in matches(value, rest):
                yield (key, *sub), found
    elif isinstance(data, dict) and head in data:
        for sub, found in matches(data[head], rest):
            yield (head, *sub), found


def needed_before(pb: Playbook, ctx: Context, start: int, given: frozenset[str]) -> dict[str, str]:
    """Names the steps from top-level position `start` on use that only the
    steps before it define (`given`: names passed with -e): name → the step."""
    defined: dict[str, str] = {}
    for step in pb.steps[: start - 1]:
        for inner in step.walk():
            names = {inner.register} if inner.register else set()
            if inner.kind == "set":
                names |= set(inner.body)
            if inner.kind == "include":
                included = ctx.load_include(pb, inner.body)
                if included is not None:
                    names |= registered_names(included, ctx, frozenset({pb.path}))
            for name in names:
                defined.setdefault(name, inner.name)
    check = TemplateCheck(replace(pb, steps=pb.steps[start - 1 :]), ctx, given)
    check.run()
    return {name: defined[name] for name in sorted(check.missing) if name in defined}
