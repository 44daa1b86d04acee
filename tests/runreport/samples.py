"""Documents built by hand, as a drill fills them: targets, objectives,
people, notes, with hostile text wherever a person or a playbook writes."""

from __future__ import annotations

from runbook.runreport.document import (
    Answer,
    CorrectiveAction,
    Document,
    Finding,
    Item,
    Notification,
    Objective,
    Participant,
    Section,
    Signoff,
)
from tests.runreport.htmlcheck import HOSTILE


def item(n: int) -> Item:
    """Step n: odd ones have a 5 s target and take 8 s (over it); every third
    failed; every seventh never began."""
    began = n % 7 != 0
    return Item(
        number=str(n),
        name=f"step {n} {HOSTILE}",
        kind="sql",
        phase="rollback" if n % 5 == 0 else "main",
        status=("ok" if n % 3 else "failed") if began else "not_run",
        start_s=n * 10.0 if began else None,
        duration_s=(8.0 if n % 2 else 0.0) if began else None,
        target_s=5.0 if n % 2 else None,
        verdict=("fail" if began else "not reached") if n % 2 else None,
        error="boom" if began and n % 3 == 0 else None,
        run="procedure",
    )


OBJECTIVES = (
    Objective("time to respond", 900.0, 12.0, "pass"),
    Objective("time to mitigate", 900.0, None, "not reached"),
    Objective("time to recover", 3600.0, None, "not reached"),
    Objective(HOSTILE, 60.0, 61.0, "fail"),
)


def drill(steps: int = 4) -> Document:
    return Document(
        title=f"Drill {HOSTILE}",
        kind="drill",
        subtitle=HOSTILE,
        facts={"drill": "d1", "who": HOSTILE, "nothing": None},
        items=tuple(item(n) for n in range(1, steps + 1)),
        objectives=OBJECTIVES,
        participants=(Participant("alice", "commander"), Participant(HOSTILE, HOSTILE)),
        answers=(Answer("Stop production?", "alice", 4.5, "ok", "4"),),
        findings=(Finding(HOSTILE, "bob", "2026-12-04T07:00:00Z"),),
        actions=(CorrectiveAction(HOSTILE, "carol", "2026-12-31"),),
        signoffs=(Signoff("dave", "2026-12-05T09:00:00Z", HOSTILE),),
        notifications=(Notification("incident 1 (CRITICAL): x", "open"),),
        sections=(Section(HOSTILE, ("inject", "at"), ((HOSTILE, "0 s"), ("drop fk",))),),
        notes=(HOSTILE,),
    )
