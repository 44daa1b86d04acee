"""runbook's own work per step, in CPU instructions (valgrind), the database left out.

    .venv/bin/python bench/step_instructions.py

Wall-clock figures on a shared 2-core machine move by ±20 % from run to run;
instruction counts do not, so this is the figure to compare two versions of the
engine by. It runs the check playbooks of engine_bench.py (N = 10 and 100) under
`valgrind --tool=callgrind`, in-process, with the one call that talks to the
database, `Session.execute`, answering at once with a one-row result: what is
left is runbook's own work (the playbook from the cache, templating, gates, the
outcome, the journal's records and thread, the output line). Per step is
(I(100) - I(10)) / 90, for a new process (one run, as the CLI does) and for a
process that has run the playbook before (third run). Needs valgrind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine_bench import playbook  # noqa: E402

from runbook.pg import embedded  # noqa: E402

# Run inside valgrind: the engine with an instant database answer.
INNER = """
import os, sys
from pathlib import Path
os.chdir(sys.argv[1])
from runbook import db, report
from runbook import service
from runbook.results import QueryResult

def execute(self, statements, **options):
    self.connect()
    return QueryResult([{"n": 10}], ["n"], 1, [], 0.01, "SELECT 1")

db.Session.execute = execute
sink = open(os.devnull, "w")
for _ in range(int(sys.argv[3])):
    service.run(service.RunSpec(playbook=Path(f"bench{sys.argv[2]}.yaml")), lambda: report.PlainReporter(sink))
"""


def instructions(work: Path, n: int, runs: int) -> int:
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    argv += [sys.executable, str(work / "inner.py"), str(work), str(n), str(runs)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    line = next(line for line in proc.stderr.splitlines() if "Collected" in line)
    return int(line.split()[-1])


def main() -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    work = Path(tempfile.mkdtemp(prefix="runbook-instructions-"))
    server = embedded.start(work / "pgdata")
    try:
        dsn = server.database_dsn("postgres")
        (work / "inventory.yaml").write_text(f"targets:\n  bench: {{dsn: {dsn!r}}}\n")
        (work / "inner.py").write_text(INNER)
        for n in (10, 100):
            (work / f"bench{n}.yaml").write_text(playbook(n))
        env_cwd = os.getcwd()
        os.chdir(work)
        try:
            for n in (10, 100):  # fill the caches a run of unchanged files finds
                subprocess.run([sys.executable, "inner.py", str(work), str(n), "1"], check=True)
        finally:
            os.chdir(env_cwd)
        for runs, label in (
            (1, "a new process (one run, as the CLI)"),
            (3, "a process that ran it before"),
        ):
            per_run = {n: instructions(work, n, runs) for n in (10, 100)}
            if runs == 1:
                per_step = (per_run[100] - per_run[10]) / 90
            else:  # the first of the runs is the new process's; the others are warm
                single = {n: instructions(work, n, 1) for n in (10, 100)}
                per_step = ((per_run[100] - single[100]) - (per_run[10] - single[10])) / (
                    90 * (runs - 1)
                )
            print(f"{label}: {per_step / 1e6:.2f} million instructions per step")
    finally:
        embedded.stop(work / "pgdata")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
