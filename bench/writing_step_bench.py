"""What exactly-once costs a writing step: `runbook run` of INSERT steps against
a plain psycopg loop committing each INSERT on its own.

    .venv/bin/python bench/writing_step_bench.py [--repeats 15]

Every transactional writing step commits with a marker row in the target's
`runbook.applied` (so that resume can tell, after any crash, whether it
committed). Inside one process, on an embedded PostgreSQL, it times change
playbooks of N = 30 and 300 INSERT steps and two plain loops doing the same
INSERTs one transaction each: bare, and with the same marker INSERT beside.
The cost per step is (t(300) - t(30)) / 270; rounds are shuffled; medians.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runbook import report, service  # noqa: E402
from runbook.pg import embedded  # noqa: E402

SIZES = (30, 300)


def playbook(n: int) -> str:
    steps = "".join(
        f"  - name: Write {i}\n    sql: INSERT INTO w (step, v) VALUES ({i}, {{{{ v }}}})\n"
        for i in range(n)
    )
    return f"name: write-{n}\nkind: change\nvars: {{v: 7}}\nsteps:\n{steps}"


def plain(dsn: str, n: int, marker: bool) -> None:
    with psycopg.connect(dsn, application_name="plain-loop") as conn:
        for i in range(n):
            with conn.transaction():
                conn.execute("INSERT INTO w (step, v) VALUES (%s, %s)", (i, 7))
                if marker:
                    conn.execute(
                        "INSERT INTO bench_applied (run_id, step) VALUES (%s, %s)",
                        (str(uuid.uuid4()), i),
                    )


def measure(work: Path, dsn: str, repeats: int) -> dict[str, float]:
    os.chdir(work)
    sink = open(os.devnull, "w")  # noqa: SIM115

    def engine(n: int) -> None:
        service.run(
            service.RunSpec(playbook=Path(f"write{n}.yaml")), lambda: report.PlainReporter(sink)
        )

    kinds: dict[str, Callable[[int], None]] = {
        "runbook": engine,
        "plain": lambda n: plain(dsn, n, False),
        "plain+marker": lambda n: plain(dsn, n, True),
    }
    samples: dict[tuple[str, int], list[float]] = {(k, n): [] for k in kinds for n in SIZES}
    for fn in kinds.values():
        fn(SIZES[-1])  # warm up
    for _ in range(repeats):
        order = list(samples)
        random.shuffle(order)
        for kind, n in order:
            started = time.perf_counter()
            kinds[kind](n)
            samples[(kind, n)].append(time.perf_counter() - started)
    span = SIZES[1] - SIZES[0]
    return {
        kind: statistics.median(
            (b - a) / span * 1000
            for a, b in zip(samples[(kind, SIZES[0])], samples[(kind, SIZES[1])], strict=True)
        )
        for kind in kinds
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="runbook-wbench-"))
    server = embedded.start(work / "pgdata")
    try:
        embedded.ensure_database(server, "wbench")
        dsn = server.database_dsn("wbench")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE w (step int, v int)")
            conn.execute(
                "CREATE TABLE bench_applied (run_id text, step int, at timestamptz DEFAULT now(),"
                " PRIMARY KEY (run_id, step))"
            )
        (work / "inventory.yaml").write_text(f"targets:\n  bench: {{dsn: {dsn!r}}}\n")
        for n in SIZES:
            (work / f"write{n}.yaml").write_text(playbook(n))
        figures = measure(work, dsn, args.repeats)
    finally:
        embedded.stop(work / "pgdata")
        shutil.rmtree(work, ignore_errors=True)
    print("| per writing step, (t(300) - t(30)) / 270, one process | ms |")
    print("|---|---|")
    for kind, ms in figures.items():
        print(f"| {kind} | {ms:.3f} |")


if __name__ == "__main__":
    main()
