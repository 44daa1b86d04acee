"""Checks of an `include:` step: the file it names is inside the project,
exists, is valid, leads back to no playbook that includes it, and gets every
variable it needs. An included file's own problems are listed without a word
of the file: an include may name a file that is no playbook at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from runbook.checks.common import Context, doc_at
from runbook.errors import Problem
from runbook.load import names
from runbook.model import Playbook, Step


def check_include(pb: Playbook, step: Step, ctx: Context) -> Iterator[Problem]:
    assert pb.doc is not None
    path = (*step.data_path, "include")
    target, why = ctx.include(pb, step.body)
    if why is not None:
        yield doc_at(pb.doc, path, why, "include-outside")
        return
    if not target.is_file():
        yield doc_at(
            pb.doc,
            path,
            f"included playbook {names.shown(step.body)} does not exist",
            "include-missing",
        )
        return
    if _reaches(target, pb.path, ctx, set()):
        yield doc_at(
            pb.doc,
            path,
            f"include cycle: {names.shown(step.body)} leads back to this playbook",
            "include-cycle",
        )
        return
    included, problems = ctx.load(target)
    if included is None:
        yield doc_at(
            pb.doc,
            path,
            f"included playbook {names.shown(step.body)} is invalid ({len(problems)} problem(s)); "
            "its problems are listed without what the file holds: run `runbook validate` on "
            "it to see them in full",
            "include-invalid",
        )
        yield from (_concealed(p) for p in problems)
        return
    missing = [
        name for name, value in included.vars.items() if value is None and name not in step.vars
    ]
    for name in missing:
        yield doc_at(
            pb.doc,
            path,
            f"included playbook needs variable {name!r}; give it in this step's vars",
            "include-var",
        )


def _concealed(problem: Problem) -> Problem:
    """A problem of an included file, without a word of the file in it: an
    include may name a file that is no playbook at all (an inventory with a
    password), and messages quote keys and values."""
    what = _NEUTRAL.get(problem.code, "invalid here")
    return Problem(problem.path, problem.line, problem.col, "", what, problem.code)


_NEUTRAL = {
    "yaml-syntax": "YAML syntax error",
    "tab": "tab character used for indentation",
    "encoding": "file is not valid UTF-8",
    "nul": "NUL character in the file",
    "empty": "file is empty",
    "not-mapping": "the document is not a mapping",
    "duplicate-key": "duplicate key",
    "unknown-key": "unknown key",
    "missing-key": "missing required key",
    "type": "value of the wrong type",
    "io": "cannot read the file",
}


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
    # Every include is followed, none skipped once the answer is known: this
    # walk is what vets each reachable include (ctx.include) before the
    # template check reads them.
    reached = [
        _reaches(target, goal, ctx, seen)
        for step in playbook.walk()
        if step.kind == "include"
        for target, why in [ctx.include(playbook, step.body)]
        if why is None
    ]
    return any(reached)
