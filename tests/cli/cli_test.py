"""The command line's own process-level behaviour."""

from __future__ import annotations

import subprocess
import sys


def test_the_process_ends_without_a_final_scan_of_its_objects() -> None:
    # An exit handler registered before runbook.cli is imported runs after
    # runbook's own (they run last in, first out): by then every object is
    # frozen, so CPython's last collection has nothing to scan.
    script = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
        "import runbook.cli\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "frozen True"
