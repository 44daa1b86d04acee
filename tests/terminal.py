"""The real CLI on a pseudo-terminal: what an operator at a keyboard sees and types."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Terminal:
    """`runbook ARGS` with stdin, stdout and stderr on a pty."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runbook.cli", *args],
            cwd=cwd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            # faulthandler: a process that hangs is sent SIGABRT by `wait`,
            # and shows every thread's stack before it goes.
            env={
                **os.environ,
                "COLUMNS": "120",
                "TERM": "xterm",
                "PYTHONFAULTHANDLER": "1",
                **(env or {}),
            },
            start_new_session=True,
        )
        os.close(slave)
        self.raw = b""

    @property
    def text(self) -> str:
        """Everything shown so far, without colours and cursor movement."""
        return _ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the other side closed: the process ended
            return False
        self.raw += chunk
        return bool(chunk)

    def expect(self, pattern: str, timeout: float = 60) -> None:
        """Wait until `pattern` (a regex) has been shown."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text):
            if time.monotonic() > deadline:
                raise AssertionError(f"never shown: {pattern!r}; shown:\n{self.text}")
            if not self._read(0.2) and self.proc.poll() is not None:
                raise AssertionError(f"ended before {pattern!r} was shown:\n{self.text}")

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def ctrl_c(self) -> None:
        """What the terminal does on Ctrl-C: SIGINT to the foreground process."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def wait(self, timeout: float = 90) -> int:
        """The exit code. Past `timeout` (less than the tests' own timeouts, so
        that this says why), the process is made to show its threads' stacks."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.send_signal(signal.SIGABRT)  # faulthandler dumps the stacks
                end = time.monotonic() + 5
                while self.proc.poll() is None and time.monotonic() < end:
                    self._read(0.2)
                while self._read(0.05):
                    pass
                self.proc.kill()
                raise AssertionError(f"still running after {timeout} s:\n{self.text}")
            self._read(0.2)
        while self._read(0.05):
            pass
        os.close(self.master)
        return self.proc.returncode
