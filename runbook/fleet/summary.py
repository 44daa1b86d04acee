"""What a fleet run comes to, in a few lines however many targets it had:
counts by status, the slowest targets, and the ones that did not pass.
Names and reasons are shown, never obeyed (runbook.shown): a computed
group's target is named after a database, whatever its name holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from runbook.outcome import RunOutcome, RunStatus
from runbook.shown import safe

# The order statuses are counted in: the worst first.
ORDER = (
    RunStatus.FAILED,
    RunStatus.ROLLBACK_FAILED,
    RunStatus.UNREACHABLE,
    RunStatus.INTERRUPTED,
    RunStatus.GATE_FAILED,
    RunStatus.DECLINED,
    RunStatus.ROLLED_BACK,
    RunStatus.AWAITING_APPROVAL,
    RunStatus.NOT_RUN,
    RunStatus.SKIPPED,
    RunStatus.OK,
    RunStatus.RUNNING,
)


def counts_line(statuses: Sequence[RunStatus]) -> str:
    """'20 targets: 17 ok, 2 failed, 1 unreachable' (the worst first)."""
    counted = Counter(statuses)
    parts = [f"{counted[s]} {s.value}" for s in ORDER if counted[s]]
    return f"{len(statuses)} target(s): " + ", ".join(parts)


def target_line(outcome: RunOutcome) -> str:
    """One target as it ends (piped output, and the summary's list)."""
    return (
        f"{safe(outcome.target):<20} {outcome.status.value:<12} exit {outcome.exit_code}  "
        f"{outcome.duration_ms / 1000:.1f}s  {outcome.run_id}  {safe(outcome.reason or '')}"
    ).rstrip()


def summary_lines(outcomes: Sequence[RunOutcome], fleet: str, shown: int = 20) -> list[str]:
    """The end of a fleet run: its counts, the targets that did not pass (the
    first `shown` of them), the slowest, and where the whole matrix is."""
    lines = ["", counts_line([o.status for o in outcomes])]
    passed = (RunStatus.OK, RunStatus.SKIPPED)
    bad = [o for o in outcomes if o.status not in passed]
    bad.sort(key=lambda o: ORDER.index(o.status))
    if bad:
        lines.append("did not pass:")
        lines += [f"  {target_line(o)}" for o in bad[:shown]]
        if len(bad) > shown:
            lines.append(f"  … and {len(bad) - shown} more")
    ran = [o for o in outcomes if o.status is not RunStatus.NOT_RUN]
    if len(ran) > 1:
        slowest = sorted(ran, key=lambda o: o.duration_ms, reverse=True)[:3]
        took = ", ".join(f"{safe(o.target)} {o.duration_ms / 1000:.1f}s" for o in slowest)
        lines.append(f"slowest: {took}")
    lines.append(f"fleet run {fleet}: runbook show {fleet}")
    return lines
