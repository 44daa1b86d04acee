"""Starting a scheduled run as its own process: `runbook scheduler fire`.

The run spec travels as JSON on the command line (a scheduled run has no -e
values, so nothing secret is on it); the process starts in a session of its
own, so a Ctrl-C at the scheduler's terminal reaches the scheduler, which
passes it on to each run (runbook.schedule.tick.Scheduler.stop). Its stdout is
dropped (the journal has everything); its stderr is kept in a temporary file,
whose last line says why a run could not start.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import IO

from runbook.schedule.watch import RunProcess
from runbook.service import RunSpec


@dataclass
class Launched:
    process: RunProcess
    stderr: IO[bytes] | None = None


def payload(spec: RunSpec, delay: float) -> str:
    return json.dumps({"spec": spec.to_dict(), "delay": round(delay, 3)})


def launch(spec: RunSpec, delay: float) -> Launched:
    """`runbook scheduler fire` for `spec`, after `delay` seconds (its jitter)."""
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- read and closed when the run is reaped
    process = subprocess.Popen(
        [sys.executable, "-m", "runbook", "scheduler", "fire", payload(spec, delay)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )
    return Launched(process, stderr)


def last_line(stream: IO[bytes] | None) -> str:
    """The last line a run's process wrote on stderr: why it did not run."""
    if stream is None:
        return ""
    try:
        stream.seek(0)
        text = stream.read()[-4000:].decode(errors="replace")
        stream.close()
    except (OSError, ValueError):
        return ""
    # PostgreSQL's DETAIL/HINT/CONTEXT lines follow the message that says what went wrong.
    follow = ("DETAIL:", "HINT:", "CONTEXT:", "LINE ", "^")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith(follow)]
    return (said or lines)[-1] if lines else ""
