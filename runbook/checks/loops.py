"""Checks of `loop:` and `loop_var:` beyond the schema (the names used in the
loop's templates are checked with every other template, in run order:
runbook.checks.templates)."""

from __future__ import annotations

from collections.abc import Iterator

from runbook.checks.common import doc_at, get_path
from runbook.errors import Problem
from runbook.load import names
from runbook.model import LOOP_INDEX, Playbook


def loop_names(loop_var: str) -> frozenset[str]:
    """What a looped step's own templates see besides the run's names."""
    return frozenset({loop_var, LOOP_INDEX})


def check_loops(pb: Playbook) -> Iterator[Problem]:
    doc = pb.doc
    assert doc is not None
    undoing = {id(s) for step in pb.walk() for undo in step.rollback for s in undo.walk()}
    for step in pb.walk():
        data = get_path(doc.data, step.data_path)
        if "loop_var" in data and step.loop is None:
            yield doc_at(
                doc,
                (*step.data_path, "loop_var"),
                "loop_var: without loop: names the item of a loop this step does not have",
                "loop-var-without-loop",
                key=True,
            )
        if step.loop is None:
            continue
        if step.kind in ("include", "transaction"):
            yield doc_at(
                doc,
                (*step.data_path, "loop"),
                f"a {step.kind} step cannot loop; put `loop:` on the steps inside it",
                "loop-on-block",
                key=True,
            )
        elif id(step) in undoing:
            # Resume keeps which rollback steps of which iteration committed;
            # a rollback step's own iterations are not told apart there.
            yield doc_at(
                doc,
                (*step.data_path, "loop"),
                "a rollback step cannot loop; loop the step it undoes instead (its rollback "
                "steps then run once per iteration, newest first, each seeing its item)",
                "loop-in-rollback",
                key=True,
            )
        why = names.reserved_why(step.loop_var)
        if why is None and step.loop_var == LOOP_INDEX:
            why = f"{LOOP_INDEX!r} is the iteration's number in every looped step; choose another name"
        if why:  # the default, `item`, is never reserved: loop_var was written
            yield doc_at(doc, (*step.data_path, "loop_var"), why, "reserved-name")
