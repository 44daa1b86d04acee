"""Escalation policies: who is told, at which minute, for which severity.

A policy gives, per severity, response-time targets and ordered levels (a delay
from the incident's opening and the channels to notify), and optionally a
repeat of the last level. A severity without an entry uses the next higher one
that has one. The timeline is the list of stops an unacknowledged incident
goes through; `runbook.alerts.incidents` walks it as time passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from runbook.errors import UsageError
from runbook.model import Inventory, Level, Policy, Scale, SeverityPolicy


@dataclass(frozen=True)
class Stop:
    """One point of the timeline: at `after` seconds, notify `level`."""

    number: int  # 1-based position in the timeline
    after: float
    level: Level
    level_number: int  # 1-based level
    repeat: int = 0  # 0 for the level itself, 1.. for repeats of the last level

    @property
    def event(self) -> str:
        if self.repeat:
            return "repeat"
        return "trigger" if self.number == 1 else "escalate"

    @property
    def label(self) -> str:
        name = f" {self.level.name}" if self.level.name else ""
        again = f" (repeat {self.repeat})" if self.repeat else ""
        return f"level {self.level_number}{name}{again}"


def severity_policy(policy: Policy, severity: str, scale: Scale) -> SeverityPolicy | None:
    """The policy entry for `severity`: its own, else the next higher one's."""
    level = scale.get(severity)
    if level is None:
        return None
    by_rank: dict[int, SeverityPolicy] = {}
    for name, entry in policy.severities.items():
        found = scale.get(name)
        if found is not None:
            by_rank[found.rank] = entry
    for rank in range(level.rank, len(scale.levels)):
        if rank in by_rank:
            return by_rank[rank]
    return None


def timeline(entry: SeverityPolicy) -> list[Stop]:
    stops = [Stop(i + 1, level.after, level, i + 1) for i, level in enumerate(entry.levels)]
    if entry.repeat_every and stops:
        last = stops[-1]
        for n in range(1, (entry.repeat_times or 1) + 1):
            stops.append(
                Stop(
                    len(stops) + 1,
                    last.after + n * entry.repeat_every,
                    last.level,
                    last.level_number,
                    n,
                )
            )
    return stops


def at_or_above(scale: Scale, severity: str, threshold: str) -> bool:
    level, bar = scale.get(severity), scale.get(threshold)
    return level is not None and bar is not None and level.rank >= bar.rank


def minutes(seconds: float) -> str:
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{int(seconds // 3600)}h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def show(inventory: Inventory, name: str, severity: str | None = None) -> list[str]:
    """The timeline of a policy as lines: who is told at which minute."""
    policy = inventory.policies.get(name)
    if policy is None:
        known = ", ".join(sorted(inventory.policies)) or "none"
        raise UsageError(f"unknown escalation policy {name!r}; the inventory has {known}")
    scale = inventory.scale
    if severity is not None and scale.get(severity) is None:
        raise UsageError(f"unknown severity {severity!r}; the scale is {', '.join(scale.names())}")
    wanted = [scale.get(severity)] if severity else list(reversed(scale.levels))
    lines = [
        f"policy {name}" + (f": {policy.description}" if policy.description else ""),
        f"  opens incidents at {policy.threshold} and above",
    ]
    for level in wanted:
        if level is None:
            continue
        if not at_or_above(scale, level.name, policy.threshold) and severity is None:
            continue
        entry = severity_policy(policy, level.name, scale)
        if entry is None:
            lines.append(f"  {level.name}: no escalation")
            continue
        targets = []
        if entry.acknowledge_within:
            targets.append(f"acknowledge within {minutes(entry.acknowledge_within)}")
        if entry.mitigate_within:
            targets.append(f"mitigate within {minutes(entry.mitigate_within)}")
        lines.append(f"  {level.name}" + (f" ({', '.join(targets)})" if targets else ""))
        for stop in timeline(entry):
            who = ", ".join(
                r.channel + (f" ({', '.join(r.to)})" if r.to else "") for r in stop.level.notify
            )
            lines.append(f"    +{minutes(stop.after):>5}  {stop.label}: {who}")
        lines.append("    an acknowledgement stops what is not yet sent")
    return lines
