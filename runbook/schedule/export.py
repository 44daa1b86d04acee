"""Schedules for the OS's scheduler: crontab lines and systemd units that call
`runbook run`.

What only runbook's scheduler does — blackouts, overlap, catch-up, one fire
per slot across hosts, Debian's DST rule for systemd — is not carried over;
the output says so in comments. `every:` intervals that divide an hour or a
day become epoch-aligned cron/calendar expressions in UTC.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from cronsim import CronSim

from runbook.schedule import cron
from runbook.schedule.spec import Spec
from runbook.schedule.words import describe, duration_words

CRON_HEADER = (
    "# runbook schedules (runbook schedule export --cron).",
    "# cron applies none of runbook's blackouts, overlap, catch-up or jitter, and",
    "# CRON_TZ is cronie's: Debian's cron reads every line in the system's zone.",
)
_START = dt.datetime(2001, 1, 1)  # any day: only the parsed fields are used
_SAFE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


@dataclass(frozen=True)
class Job:
    """One (schedule, target): what to run, from where."""

    spec: Spec
    target: str
    argv: tuple[str, ...]
    cwd: Path

    @property
    def title(self) -> str:
        return f"{self.spec.playbook} on {self.target}: {describe(self.spec)}"


def every_as_cron(seconds: float) -> str | None:
    """An epoch-aligned cron expression (in UTC) for an interval, if there is one."""
    if seconds % 60:
        return None
    minutes = int(seconds // 60)
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if seconds % 3600 == 0:
        hours = int(seconds // 3600)
        if hours == 24:
            return "0 0 * * *"
        if hours < 24 and 24 % hours == 0:
            return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    return None


def _cron_syntax(expr: str) -> bool:
    """Whether cron itself reads it: cronsim's `L`, `W` and `#` are its own."""
    _, _, dom, _, dow = cron.expand(expr).split()
    return not ({"L", "W"} & set(dom.upper()) or "#" in dow or dow.upper().endswith("L"))


def crontab(jobs: list[Job]) -> str:
    """Crontab lines, grouped by time zone (CRON_TZ), one comment per job."""
    lines = list(CRON_HEADER)
    zone: str | None = None
    for job in jobs:
        spec = job.spec
        expr = spec.cron if spec.cron is not None else every_as_cron(spec.every or 0)
        line_zone = spec.timezone if spec.cron is not None else "UTC"
        lines.append(f"# {job.title}")
        if expr is None or not _cron_syntax(expr):
            lines.append("# (not in cron's syntax: use --systemd, or runbook's scheduler)")
            continue
        if line_zone != zone:
            lines.append(f"CRON_TZ={line_zone}")
            zone = line_zone
        command = " ".join(shlex.quote(a) for a in job.argv).replace("%", r"\%")
        lines.append(f"{expr} cd {shlex.quote(str(job.cwd))} && {command}")
    return "\n".join(lines) + "\n"


def _calendar_field(values: set[int], full: range, width: int = 2) -> str:
    """A set of values as systemd writes it: `*`, `00/15`, `1..5`, `8,12,17`."""
    if set(full) <= values:
        return "*"
    ordered = sorted(values)
    if len(ordered) > 2:
        step = ordered[1] - ordered[0]
        progression = list(range(ordered[0], full.stop, step))
        if step > 1 and ordered == progression:
            return f"{ordered[0]:0{width}d}/{step}"
    parts = []
    for _, run in itertools.groupby(enumerate(ordered), lambda pair: pair[1] - pair[0]):
        values_run = [v for _, v in run]
        first, last = values_run[0], values_run[-1]
        parts.append(
            f"{first:0{width}d}" if first == last else f"{first:0{width}d}..{last:0{width}d}"
        )
    return ",".join(parts)


_SYSTEMD_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


def calendar(spec: Spec) -> list[str]:
    """OnCalendar= values for a schedule ([] when systemd's calendar cannot say it)."""
    if spec.cron is None:
        return _every_calendar(spec.every or 0)
    if not _cron_syntax(spec.cron):
        return []
    parsed = CronSim(spec.cron, _START)
    minutes = _calendar_field(set(parsed.minutes), range(60))
    hours = _calendar_field(set(parsed.hours), range(24))
    months = _calendar_field(set(parsed.months), range(1, 13))
    dom_values = {d for d in parsed.days if isinstance(d, int) and d > 0}
    days = _calendar_field(dom_values, range(1, 32))
    weekdays = sorted({d % 7 for d in parsed.weekdays if isinstance(d, int)})
    dow = "" if len(weekdays) == 7 else ",".join(_SYSTEMD_DAYS[d] for d in weekdays) + " "
    time = f"{hours}:{minutes}:00 {spec.timezone}"
    if not parsed.day_and and days != "*" and dow:
        # cron runs when either day field matches; systemd needs both: one line each.
        return [f"*-{months}-{days} {time}", f"{dow}*-{months}-* {time}"]
    return [f"{dow}*-{months}-{days} {time}"]


def _every_calendar(seconds: float) -> list[str]:
    """An epoch-aligned calendar (UTC) for intervals that divide a minute, an hour or a day."""
    whole = int(seconds)
    if whole != seconds:
        return []
    if whole < 60 and 60 % whole == 0:
        return [f"*-*-* *:*:00/{whole} UTC"]
    if whole % 60 == 0 and whole < 3600 and 3600 % whole == 0:
        minutes = whole // 60
        return ["*-*-* *:*:00 UTC" if minutes == 1 else f"*-*-* *:00/{minutes}:00 UTC"]
    if whole % 3600 == 0 and 86400 % whole == 0:
        hours = whole // 3600
        if hours == 1:
            return ["*-*-* *:00:00 UTC"]
        return ["*-*-* 00:00:00 UTC" if hours == 24 else f"*-*-* 00/{hours}:00:00 UTC"]
    return []


def _exec_quote(arg: str) -> str:
    """An ExecStart= word: quoted for systemd, `%` and `$` doubled (its specifiers)."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if _SAFE.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_name(job: Job) -> str:
    return re.sub(r"[^A-Za-z0-9:_.-]", "_", f"runbook-{job.spec.playbook}-{job.target}")


def systemd_units(jobs: list[Job]) -> dict[str, str]:
    """File name → text: one .service per (playbook, target), one .timer per schedule."""
    files: dict[str, str] = {}
    for job in jobs:
        name = unit_name(job)
        files[f"{name}.service"] = (
            "[Unit]\n"
            f"Description=runbook: {job.spec.playbook} on {job.target.replace('%', '%%')}\n\n"
            "[Service]\n"
            "Type=oneshot\n"
            # A path taken as written: only systemd's specifiers need escaping.
            f"WorkingDirectory={str(job.cwd).replace('%', '%%')}\n"
            f"ExecStart={' '.join(_exec_quote(a) for a in job.argv)}\n"
        )
        timer = f"{name}.timer"
        n = 2
        while timer in files:
            timer, n = f"{name}-{n}.timer", n + 1
        files[timer] = _timer(job, name)
    return files


def _timer(job: Job, service: str) -> str:
    spec = job.spec
    when = calendar(spec)
    lines = ["[Unit]", f"Description={job.title.replace('%', '%%')}", "", "[Timer]"]
    if when:
        lines += [f"OnCalendar={value}" for value in when]
    else:
        # Not a calendar: an interval from the timer's start, not from the epoch.
        lines += [f"OnActiveSec={duration_words(spec.interval)}"]
        lines += [f"OnUnitActiveSec={duration_words(spec.interval)}"]
    lines += [
        f"Unit={service}.service",
        "AccuracySec=1s",
        # catch-up none: a fire missed while the machine was off stays missed.
        f"Persistent={'false' if spec.schedule.catchup == 'none' else 'true'}",
    ]
    if spec.schedule.jitter:
        lines.append(f"RandomizedDelaySec={duration_words(spec.schedule.jitter)}")
    lines += ["", "[Install]", "WantedBy=timers.target", ""]
    return "\n".join(lines)
