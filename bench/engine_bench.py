"""Engine overhead: `runbook run` against a plain psycopg loop, same SQL, same gates.

    .venv/bin/python bench/engine_bench.py [--repeats 40]

On an embedded PostgreSQL it loads a table of 100,000 readings, writes check
playbooks of N = 1, 10, 100 and 1000 queries, each with a threshold gate, and
times (wall clock, as separate processes):

- `runbook run` of each playbook (journaling on, plain output to a file);
- a plain psycopg script running the same statements with the same parameters
  and checking the same thresholds in Python.

The marginal cost of one query+gate is (t(100) - t(10)) / 90 for each; start-up
is the wall time of `runbook run` on a one-step playbook. Each round runs every
command once, in a shuffled order, so the machine's drift hits both sides
alike; figures are medians over the rounds, with interquartile ranges to show
the noise. Start-up varies by tens of milliseconds from process to process on
a shared machine, which over 90 steps is a large part of a step's cost, so the
same cost is also given over 900 steps, (t(1000) - t(100)) / 900, both as
separate processes and inside one process (no start-up, warm caches, a new
connection per run on both sides). Figures go to stdout as a Markdown table
and to bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runbook.pg import embedded  # noqa: E402

# Each check counts one sensor's readings over a threshold: a bitmap scan of
# ~1,000 of the 100,000 rows, about half a millisecond of database work. The
# comment makes every step's SQL text distinct, as different checks are (no
# template is compiled once and reused by luck).
QUERY = "SELECT count(*) AS n FROM readings WHERE sensor = {{ sensor }} AND value > {{ threshold }} /* check %d */"
PLAIN_QUERY = "SELECT count(*) AS n FROM readings WHERE sensor = %s AND value > %s /* check %d */"
# The same with psycopg's placeholders kept through `% i` (which fills the comment).
PLAIN_NUMBERED = PLAIN_QUERY.replace("%s", "%%s")

PLAIN = """
import sys, psycopg
dsn, n = sys.argv[1], int(sys.argv[2])
failed = 0
with psycopg.connect(dsn, autocommit=True, application_name="plain-loop") as conn:
    cur = conn.cursor()
    for i in range(n):
        cur.execute(%(query)r %% i, (i %% 100, 900))
        value = cur.fetchone()[0]
        if not value < 1000:
            failed += 1
print(failed)
"""


SIZES = (1, 10, 100, 1000)


def playbook(n: int) -> str:
    steps = []
    for i in range(n):
        steps.append(
            f"  - name: Readings of sensor {i % 100} over the threshold\n"
            f"    query: {QUERY % i}\n"
            f"    vars: {{sensor: {i % 100}, threshold: 900}}\n"
            f"    register: r{i}\n"
            f"    gate: {{that: r{i}.scalar < 1000, severity: WARNING}}\n"
        )
    return f"name: bench-{n}\nkind: check\nsteps:\n" + "".join(steps)


def load(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS readings")
        conn.execute(
            "CREATE TABLE readings AS SELECT g AS id, g % 100 AS sensor, (g * 7919) % 1000 AS value, "
            "now() - g * interval '1 second' AS ts FROM generate_series(1, 100000) g"
        )
        conn.execute("CREATE INDEX ON readings (sensor)")
        conn.execute("VACUUM ANALYZE readings")


def once(argv: list[str], cwd: Path) -> float:
    # Output to a file, as from cron: through a pipe, this script would wake
    # to read every line runbook prints, on the same two cores, and its own
    # reading would count as runbook's time.
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            out.seek(0)
            raise SystemExit(f"{argv} failed ({proc.returncode}):\n{out.read()}")
    return elapsed


def rounds(commands: dict[str, list[str]], cwd: Path, repeats: int) -> dict[str, list[float]]:
    """Every command once per round, in a shuffled order, so drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():
        once(argv, cwd)  # warm caches (the OS's, PostgreSQL's, runbook's document cache)
    for _ in range(repeats):
        order = list(commands)
        random.shuffle(order)
        for name in order:
            times[name].append(once(commands[name], cwd))
    return times


def marginals(small: list[float], large: list[float], steps: int = 90) -> list[float]:
    """Seconds per query+gate, round by round: (t(100) - t(10)) / 90 by default."""
    return [(b - a) / steps for a, b in zip(small, large, strict=True)]


def quartiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def in_process(work: Path, dsn: str, repeats: int) -> tuple[float, float, list[float]]:
    """Ms per query+gate from N = 100 to 1000 measured inside one process (no
    start-up noise), and the ratio of each round."""
    import os

    from runbook import report, service

    os.chdir(work)
    sink = open(os.devnull, "w")  # noqa: SIM115

    def engine(n: int) -> None:
        service.run(
            service.RunSpec(playbook=Path(f"bench{n}.yaml")), lambda: report.PlainReporter(sink)
        )

    def plain(n: int) -> None:
        # A connection per call, like for like: each `runbook run` opens its
        # own, as the plain script does in its own process. (A backend kept
        # for thousands of queries can answer faster than a new one; that is
        # not the engine's cost to measure.)
        with psycopg.connect(dsn, autocommit=True, application_name="plain-loop") as conn:
            cur = conn.cursor()
            for i in range(n):
                cur.execute(PLAIN_NUMBERED % i, (i % 100, 900))
                row = cur.fetchone()
                if row is None or not row[0] < 1000:
                    raise SystemExit("gate failed")

    # 100 and 1000 steps: inside one process the 900 steps between them weigh
    # start-up's leftovers (connecting, opening the journal) ten times less
    # than 90 would, on a machine where one query varies by a tenth of a ms.
    samples: dict[str, list[float]] = {"e100": [], "e1000": [], "p100": [], "p1000": []}
    engine(100)
    engine(1000)
    plain(1000)
    for _ in range(repeats):
        steps = [
            ("e100", engine, 100),
            ("e1000", engine, 1000),
            ("p100", plain, 100),
            ("p1000", plain, 1000),
        ]
        random.shuffle(steps)
        for key, fn, n in steps:
            started = time.perf_counter()
            fn(n)
            samples[key].append(time.perf_counter() - started)
    engine_marginals = marginals(samples["e100"], samples["e1000"], 900)
    plain_marginals = marginals(samples["p100"], samples["p1000"], 900)
    ratios = [e / p for e, p in zip(engine_marginals, plain_marginals, strict=True) if p > 0]
    return (
        statistics.median(engine_marginals) * 1000,
        statistics.median(plain_marginals) * 1000,
        ratios,
    )


def report(server: embedded.Server, work: Path, repeats: int) -> None:
    embedded.ensure_database(server, "bench")
    dsn = server.database_dsn("bench")
    load(dsn)
    (work / "inventory.yaml").write_text(f"targets:\n  bench: {{dsn: {dsn!r}}}\n")
    runbook = str(Path(sys.executable).parent / "runbook")
    (work / "plain.py").write_text(PLAIN % {"query": PLAIN_NUMBERED})
    commands: dict[str, list[str]] = {}
    for n in SIZES:
        (work / f"bench{n}.yaml").write_text(playbook(n))
        commands[f"runbook_{n}"] = [runbook, "run", f"bench{n}.yaml"]
        commands[f"plain_{n}"] = [sys.executable, "plain.py", dsn, str(n)]
    times = rounds(commands, work, repeats)
    results = {name: statistics.median(values) for name, values in times.items()}
    runbook_marginals = marginals(times["runbook_10"], times["runbook_100"])
    plain_marginals = marginals(times["plain_10"], times["plain_100"])
    # The same cost over 900 more steps: start-up noise (tens of ms from run to
    # run on a shared machine) weighs ten times less than over 90.
    runbook_slope = marginals(times["runbook_100"], times["runbook_1000"], 900)
    plain_slope = marginals(times["plain_100"], times["plain_1000"], 900)
    engine_ms, plain_ms, inner_ratios = in_process(work, dsn, repeats)
    # The same in one process with the journal in PostgreSQL (a database of
    # the same embedded server), as a team sharing a journal would run.
    import os

    embedded.ensure_database(server, "bench_journal")
    journal = server.database_dsn("bench_journal")
    os.environ["RUNBOOK_JOURNAL"] = journal  # a key=value DSN is taken as it is
    try:
        pg_engine_ms, pg_plain_ms, pg_ratios = in_process(work, dsn, repeats)
    finally:
        del os.environ["RUNBOOK_JOURNAL"]
    summary: dict[str, Any] = {
        "repeats": repeats,
        "seconds_median": results,
        "marginal_ms": {
            "runbook": statistics.median(runbook_marginals) * 1000,
            "plain": statistics.median(plain_marginals) * 1000,
        },
        # A ratio per round would divide two differences of noisy process
        # start-ups; the medians of the marginals are steadier.
        "ratio": statistics.median(runbook_marginals) / statistics.median(plain_marginals),
        "marginal_iqr_ms": {
            "runbook": [q * 1000 for q in quartiles(runbook_marginals)],
            "plain": [q * 1000 for q in quartiles(plain_marginals)],
        },
        "slope_1000_ms": {
            "runbook": statistics.median(runbook_slope) * 1000,
            "plain": statistics.median(plain_slope) * 1000,
        },
        "slope_1000_ratio": statistics.median(runbook_slope) / statistics.median(plain_slope),
        "in_process_slope_1000_ms": {"runbook": engine_ms, "plain": plain_ms},
        "in_process_slope_1000_ratio": statistics.median(inner_ratios),
        "in_process_slope_1000_ratio_iqr": quartiles(inner_ratios),
        "startup_s": results["runbook_1"],
        "pg_journal_in_process_slope_1000_ms": {"runbook": pg_engine_ms, "plain": pg_plain_ms},
        "pg_journal_in_process_slope_1000_ratio": statistics.median(pg_ratios),
        "pg_journal_in_process_slope_1000_ratio_iqr": quartiles(pg_ratios),
    }
    (ROOT / "bench" / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    marginal = summary["marginal_ms"]
    inner = summary["in_process_slope_1000_ms"]
    print("| figure | runbook run | plain psycopg loop |")
    print("|---|---|---|")
    for n in SIZES:
        print(
            f"| wall time, N = {n} | {results[f'runbook_{n}']:.3f} s | {results[f'plain_{n}']:.3f} s |"
        )
    spread = {k: "{:.2f}-{:.2f}".format(*v) for k, v in summary["marginal_iqr_ms"].items()}
    print(
        f"| marginal cost per query+gate (interquartile range) | {marginal['runbook']:.3f} ms "
        f"({spread['runbook']}) | {marginal['plain']:.3f} ms ({spread['plain']}) |"
    )
    print(f"| ratio | {summary['ratio']:.2f}x | 1.00x |")
    slope = summary["slope_1000_ms"]
    print(
        f"| cost per query+gate from N = 100 to 1000, (t(1000) - t(100)) / 900 | "
        f"{slope['runbook']:.3f} ms | {slope['plain']:.3f} ms |"
    )
    print(f"| ratio, N = 100 to 1000 | {summary['slope_1000_ratio']:.2f}x | 1.00x |")
    print(
        f"| cost per query+gate from N = 100 to 1000, in one process | {inner['runbook']:.3f} ms | {inner['plain']:.3f} ms |"
    )
    low, high = summary["in_process_slope_1000_ratio_iqr"]
    print(
        f"| ratio, N = 100 to 1000 in one process (interquartile range) | {summary['in_process_slope_1000_ratio']:.2f}x ({low:.2f}-{high:.2f}) | 1.00x |"
    )
    print(f"| start-up (one-step playbook) | {results['runbook_1']:.3f} s | |")
    pg = summary["pg_journal_in_process_slope_1000_ms"]
    low, high = summary["pg_journal_in_process_slope_1000_ratio_iqr"]
    print(
        f"| the same with the journal in PostgreSQL, in one process | {pg['runbook']:.3f} ms | {pg['plain']:.3f} ms |"
    )
    print(
        f"| ratio, journal in PostgreSQL (interquartile range) | {summary['pg_journal_in_process_slope_1000_ratio']:.2f}x ({low:.2f}-{high:.2f}) | 1.00x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument(
        "--keep", action="store_true", help="leave the server and files for profiling"
    )
    args = parser.parse_args()
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 (the figures have a spread)")
    work = Path(tempfile.mkdtemp(prefix="runbook-bench-"))
    server = embedded.start(work / "pgdata", keep_running=args.keep)
    try:
        report(server, work, args.repeats)
    finally:
        if args.keep:
            print(f"files and a running server in {work}")
        else:
            embedded.stop(work / "pgdata")  # the wheel's own clean-up does not always run
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
