"""A fleet at once: T databases × a 5-query check, runbook against a plain
psycopg thread pool (the floor).

    .venv/bin/python bench/fleet_bench.py [--targets 10,100,1000] [--forks 1,10,100]
                                          [--journal sqlite,postgresql] [--pgdata DIR]

On an embedded server of its own (`--pgdata`, kept between runs: making a
thousand databases takes a minute; `max_connections` raised to 400), T
databases made from a template, each a target of one group. Every target
runs a check playbook of 5 queries that each take 50 ms on the server
(`SELECT pg_sleep(0.05) IS NOT NULL AS ok`, standing in for network round
trips and real queries) with a gate each:

- **runbook**: `runbook.service.run` over the group with `forks`, in-process
  as the CLI runs it (a silent view: no terminal in the way), journaling to the
  project's SQLite journal or to a PostgreSQL journal on the same server;
- **floor**: a `ThreadPoolExecutor(forks)` in which each target connects, runs
  the 5 queries and checks each answer in Python: what any tool pays.

Each measurement is a process of its own (so that peak memory is its own):
wall time, CPU time (user+system, all threads) per target, peak RSS. The ideal
is T × one target's serial time (the floor's, T=1) / forks; efficiency is
ideal / wall. forks=1 at T=1,000 (over four minutes of sleeping) is left out.
Figures go to stdout as a Markdown table, and into bench/results.json
("fleet").

`--morning 20`: the issue's own case instead, through the real CLI: the
bundled morning constraint check on one demo database, then on 20 of them
with `--forks 20` (each a copy of a database loaded with sql/demo/).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUERY = "SELECT pg_sleep(0.05) IS NOT NULL AS ok"
STEPS = 5
MAX_CONNECTIONS = 400


def server(pgdata: Path) -> str:
    """The bench's server, with room for 100 targets' connections and the journal's."""
    import psycopg

    from runbook.pg import embedded

    found = embedded.start(pgdata)
    with psycopg.connect(found.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('max_connections')::int").fetchone()
        if row is None or row[0] < MAX_CONNECTIONS:
            conn.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
            conn.execute("ALTER SYSTEM SET fsync = off")  # the server's durability is not measured
            embedded.stop(pgdata)
            found = embedded.start(pgdata)
    return found.dsn


def databases(dsn: str, count: int) -> list[str]:
    """fleet_0 … fleet_{count-1}, made from one template where missing."""
    import psycopg

    from runbook.pg.embedded import replace_database

    with psycopg.connect(dsn, autocommit=True) as conn:
        have = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        if "fleet_template" not in have:
            conn.execute("CREATE DATABASE fleet_template")
        if "fleet_journal" not in have:
            conn.execute("CREATE DATABASE fleet_journal")
        for i in range(count):
            if f"fleet_{i}" not in have:
                conn.execute(f"CREATE DATABASE fleet_{i} TEMPLATE fleet_template")
    return [replace_database(dsn, f"fleet_{i}") for i in range(count)]


def project(root: Path, dsns: list[str], journal_dsn: str | None) -> None:
    targets = "".join(f"  db{i}: {{dsn: {dsn!r}}}\n" for i, dsn in enumerate(dsns))
    members = ", ".join(f"db{i}" for i in range(len(dsns)))
    journal = f"journal: {{dsn: {journal_dsn!r}, schema: fleet_bench}}\n" if journal_dsn else ""
    (root / "inventory.yaml").write_text(
        f"targets:\n{targets}groups:\n  all: [{members}]\n{journal}"
    )
    steps = "".join(
        f"  - name: q{n}\n    query: {QUERY}\n    register: r{n}\n    gate: {{that: r{n}.first.ok}}\n"
        for n in range(STEPS)
    )
    (root / "playbooks").mkdir(exist_ok=True)
    (root / "playbooks" / "check.yaml").write_text(f"name: check\nkind: check\nsteps:\n{steps}")


def measure_runbook(root: Path, forks: int) -> dict[str, Any]:
    from runbook import report, service

    os.chdir(root)
    spec = service.RunSpec(
        playbook=Path("playbooks/check.yaml"), targets=("all",), forks=forks, notify=False
    )
    view = service.FleetView(report.SilentReporter, lambda *a: None, lambda t: None, lambda o: None)
    # A run on one target first: imports and the playbook's first checks are
    # start-up, not what a target costs.
    service.run(
        service.RunSpec(playbook=spec.playbook, targets=("db0",), notify=False),
        report.SilentReporter,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    outcomes = service.run(spec, report.SilentReporter, view=view)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    bad = [o for o in outcomes if o.status.value != "ok"]
    if bad:
        raise SystemExit(f"{len(bad)} target(s) did not pass: {bad[0].target} {bad[0].reason}")
    return {"wall": wall, "cpu": cpu, "targets": len(outcomes)}


def measure_floor(dsns: list[str], forks: int) -> dict[str, Any]:
    import psycopg

    def one(dsn: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for _ in range(STEPS):
                row = conn.execute(QUERY).fetchone()
                if not (row and row[0]):
                    raise AssertionError("the gate failed")

    wall, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(forks) as pool:
        list(pool.map(one, dsns))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "targets": len(dsns)}


def one_measurement(args: argparse.Namespace) -> None:
    """--one: a single measurement in this process; JSON on stdout."""
    what, count, forks = args.one[0], int(args.one[1]), int(args.one[2])
    dsns = databases(server(args.pgdata), count)
    if what == "floor":
        found = measure_floor(dsns, forks)
    else:
        with tempfile.TemporaryDirectory(prefix="fleet-bench-") as folder:
            journal_dsn = None
            if what == "postgresql":
                from runbook.pg.embedded import replace_database

                journal_dsn = replace_database(server(args.pgdata), "fleet_journal")
            project(Path(folder), dsns, journal_dsn)
            found = measure_runbook(Path(folder), forks)
    found["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(found))


def spawn(pgdata: Path, what: str, count: int, forks: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--pgdata", str(pgdata), "--one", what, str(count), str(forks)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def morning(pgdata: Path, count: int) -> dict[str, Any]:
    """The bundled morning constraint check (playbooks/constraint-monitoring/
    morning-check.yaml) on one demo database, then on `count` of them with
    --forks `count`, through the real CLI: the wall time of each."""
    import psycopg
    import yaml

    from runbook.pg import demo
    from runbook.pg.embedded import replace_database

    dsn = server(pgdata)
    with psycopg.connect(dsn, autocommit=True) as conn:
        have = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        if "morning_template" not in have:
            conn.execute("CREATE DATABASE morning_template")
            demo.load(replace_database(dsn, "morning_template"))
        for i in range(count):
            if f"morning_{i}" not in have:
                conn.execute(f"CREATE DATABASE morning_{i} TEMPLATE morning_template")
    with tempfile.TemporaryDirectory(prefix="morning-bench-") as folder:
        root = Path(folder)
        for part in ("playbooks", "sql"):
            shutil.copytree(REPO / part, root / part)
        inventory = yaml.safe_load((REPO / "inventory.yaml").read_text())
        inventory["targets"].update(
            {f"m{i}": {"dsn": replace_database(dsn, f"morning_{i}")} for i in range(count)}
        )
        inventory.setdefault("groups", {})["morning"] = [f"m{i}" for i in range(count)]
        (root / "inventory.yaml").write_text(yaml.safe_dump(inventory))
        book = "playbooks/constraint-monitoring/morning-check.yaml"

        def timed(*args: str) -> float:
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "runbook", "run", book, "--no-notify", *args],
                cwd=root,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                capture_output=True,
                text=True,
                check=False,
            )
            took = time.perf_counter() - started
            if done.returncode not in (
                0,
                1,
            ):  # 1: the demo data's CRITICAL finding, a run all the same
                raise SystemExit(f"the morning check failed: {done.stdout}{done.stderr}")
            return took

        timed("-t", "m0")  # warm: the checks remembered, the files cached
        one = timed("-t", "m0")
        serial = timed("-t", "morning", "--forks", "1")
        many = timed("-t", "morning", "--forks", str(count))
    return {
        "targets": count,
        "one_s": round(one, 2),
        "one_after_another_s": round(serial, 2),
        "all_s": round(many, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", default="10,100,1000")
    parser.add_argument("--forks", default="1,10,100")
    parser.add_argument("--journal", default="sqlite,postgresql")
    parser.add_argument("--pgdata", type=Path, default=Path("/var/tmp/runbook-fleet-bench/pg"))
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument(
        "--morning",
        type=int,
        metavar="N",
        help="Only the morning check: one database, then N at once.",
    )
    args = parser.parse_args()
    if args.one:
        one_measurement(args)
        return
    if args.morning:
        found = morning(args.pgdata, args.morning)
        print(
            f"morning check (runbook run, the CLI): one database {found['one_s']} s; "
            f"{found['targets']} databases one after another {found['one_after_another_s']} s, "
            f"at once (--forks {found['targets']}) {found['all_s']} s"
        )
        results = REPO / "bench" / "results.json"
        data = json.loads(results.read_text()) if results.exists() else {}
        data["fleet_morning"] = found
        results.write_text(json.dumps(data, indent=2) + "\n")
        return
    counts = [int(t) for t in args.targets.split(",")]
    databases(server(args.pgdata), max(counts))
    serial = spawn(args.pgdata, "floor", 1, 1)["wall"]  # one target's serial time
    rows = []
    print(f"one target, serially: {serial * 1000:.0f} ms\n")
    print("| T | forks | journal | ideal s | floor s | runbook s | efficiency | runbook / floor "
          "| CPU/target runbook | CPU/target floor | peak MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for count in counts:
        for forks in (int(f) for f in args.forks.split(",")):
            if forks == 1 and count >= 1000:
                continue  # four minutes of sleeping, and nothing to learn
            floor = spawn(args.pgdata, "floor", count, forks)
            ideal = count * serial / forks
            for journal in args.journal.split(","):
                ran = spawn(args.pgdata, journal, count, forks)
                row = {
                    "targets": count,
                    "forks": forks,
                    "journal": journal,
                    "ideal_s": round(ideal, 3),
                    "floor_s": round(floor["wall"], 3),
                    "runbook_s": round(ran["wall"], 3),
                    "efficiency": round(ideal / ran["wall"], 3),
                    "ratio": round(ran["wall"] / floor["wall"], 3),
                    "cpu_ms_per_target": round(ran["cpu"] / count * 1000, 2),
                    "floor_cpu_ms_per_target": round(floor["cpu"] / count * 1000, 2),
                    "peak_mb": round(ran["peak_mb"]),
                }
                rows.append(row)
                print(
                    f"| {count} | {forks} | {journal} | {ideal:.2f} | {floor['wall']:.2f} "
                    f"| {ran['wall']:.2f} | {row['efficiency']:.2f} | {row['ratio']:.2f} "
                    f"| {row['cpu_ms_per_target']:.1f} ms | {row['floor_cpu_ms_per_target']:.1f} ms "
                    f"| {row['peak_mb']} |",
                    flush=True,
                )
    results = REPO / "bench" / "results.json"
    data = json.loads(results.read_text()) if results.exists() else {}
    data["fleet"] = {"serial_one_target_s": round(serial, 3), "rows": rows}
    results.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
