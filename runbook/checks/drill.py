"""A drill playbook's checks: `kind: drill` and `drill:` go together, and the
playbooks it names exist, load, and are procedures a drill can rehearse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from runbook.checks.common import doc_at
from runbook.errors import Problem
from runbook.model import Playbook

REHEARSABLE = ("emergency", "recovery", "change")


def check_drill(pb: Playbook) -> Iterator[Problem]:
    doc = pb.doc
    assert doc is not None
    if pb.kind == "drill" and pb.drill is None:
        yield doc_at(
            doc,
            ("kind",),
            "a kind: drill playbook needs `drill: {exercise: PLAYBOOK}`: the procedure it rehearses",
            "drill-without-exercise",
        )
    if pb.kind != "drill" and pb.drill is not None:
        yield doc_at(
            doc,
            ("drill",),
            "`drill:` belongs to kind: drill playbooks",
            "drill-not-drill",
            key=True,
        )
    if pb.drill is None:
        return
    for key, relative in (("exercise", pb.drill.exercise), ("recovery", pb.drill.recovery)):
        if relative is None:
            continue
        path = (pb.path.parent / relative).resolve()
        if not path.is_file():
            yield doc_at(
                doc,
                ("drill", key),
                f"no playbook {relative!r} (looked for {path})",
                "drill-missing",
            )
            continue
        kind = _kind_of(path)
        if key == "exercise" and kind not in REHEARSABLE:
            yield doc_at(
                doc,
                ("drill", key),
                f"{relative} is kind {kind}: a drill rehearses an emergency, recovery or change procedure",
                "drill-not-rehearsable",
            )


def _kind_of(path: Path) -> str | None:
    from runbook.load import loader

    found, _ = loader.load_playbook(path)
    return found.kind if found is not None else None
