"""The recorder's process start time: the key that tells a dead run from a live one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

from runbook.journal.recorder import process_started


def test_start_time_of_a_live_process_matches_psutil() -> None:
    for pid in (os.getpid(), os.getppid()):
        started = process_started(pid)
        assert started is not None
        assert abs(started - psutil.Process(pid).create_time()) < 0.05


def test_a_process_that_has_exited_has_no_start_time() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert process_started(proc.pid) is None


def test_a_command_name_with_spaces_and_parentheses_is_read_past(tmp_path: Path) -> None:
    # /proc/PID/stat puts the command name in parentheses; it may hold both.
    link = tmp_path / "odd ) name ("
    link.symlink_to(sys.executable)
    proc = subprocess.Popen([str(link), "-c", "import time; time.sleep(5)"])
    try:
        started = process_started(proc.pid)
        assert started is not None
        assert abs(started - psutil.Process(proc.pid).create_time()) < 0.05
    finally:
        proc.kill()
        proc.wait()
