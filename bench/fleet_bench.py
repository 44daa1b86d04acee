"""A fleet: `runbook run -t GROUP --forks N` over T databases, against a plain
psycopg thread pool doing the same queries and gates (the floor).

    .venv/bin/python bench/fleet_bench.py [--targets 10,100,1000] [--forks 1,10,100]
        [--journal sqlite,postgresql] [--pgdata DIR] [--rounds N]

On the embedded server (max_connections raised to 400, autovacuum off) it
makes T databases from an empty template, one per target, and a check
playbook of 5 queries that each sleep 50 ms on the server (`pg_sleep(0.05)`),
each with a gate. Every (T, forks) is measured twice, each in a process of
its own (so that peak memory and CPU time are that measurement's alone):

- runbook: `runbook.service.run` of a RunSpec naming the group, with `forks`,
  a silent reporter and the notifier, as `runbook run -t fleet --forks N`
  calls it (the collector handled as the CLI does); the journal in SQLite
  (the project's `.runbook/`) or in PostgreSQL (a database of the same server,
  through RUNBOOK_JOURNAL), emptied before each measurement;
- with `--journal none`, runbook again with its runs' records dropped at the
  journal's writer (the engine and its recorders at work, no append): what
  runbook costs without its journal, to tell apart from what each journal
  adds (a figure for the bench only; runbook has no such mode);
- the floor: a ThreadPoolExecutor of `forks` threads, each target a new
  psycopg connection and the same 5 statements with the same gates in Python.

Reported: wall time (loading and checking the files included, the
interpreter's start-up and imports not), the ideal (T × one target's serial
time / forks, one target's serial time being 5 × 50 ms), efficiency (ideal /
wall), runbook's wall over the floor's, client CPU per target (the process's
user+system time / T), and peak memory (max RSS). forks = 1 at T = 1,000 is
skipped (250 s and more: it says nothing forks = 1 at T = 100 does not).
Figures go to stdout as a Markdown table and to bench/results.json ("fleet").
With `--rounds N` every (T, forks) is measured N times, the floor again each
time, and the spread of runbook's wall over the floor's is shown and saved
("fleet_rounds"): on this machine one round cannot tell 10 % apart.

`--morning 20 --pgdata DIR`: the issue's own case, through the real CLI: the
bundled morning constraint check on one demo database, then on 20 of them one
after another (`--forks 1`) and at once (`--forks 20`), each database a copy
of one loaded with sql/demo/ ("fleet_morning" in results.json).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUERIES = 5
SLEEP = 0.05
MAX_CONNECTIONS = 400
TEMPLATE = "fleet_template"
JOURNAL_DB = "fleet_journal"
JOURNALS = ("none", "sqlite", "postgresql")
DROPPED = "FLEET_BENCH_DROP_RECORDS"  # set by --journal none, read by the runbook child
SKIPPED = {(1000, 1)}  # (T, forks): 250+ s of waiting


def database(i: int) -> str:
    return f"fleet_{i:04d}"


def statement(i: int) -> str:
    return f"SELECT 1 AS n FROM pg_sleep({SLEEP}) /* check {i} */"


def playbook() -> str:
    steps = "".join(
        f"  - name: Check {i}\n"
        f"    query: {statement(i)}\n"
        f"    register: r{i}\n"
        f"    gate: {{that: r{i}.scalar == 1, severity: WARNING}}\n"
        for i in range(QUERIES)
    )
    return f"name: fleet-check\nkind: check\nsteps:\n{steps}"


def inventory(dsn_of: dict[str, str]) -> str:
    targets = "".join(f"  {name}: {{dsn: {dsn!r}}}\n" for name, dsn in dsn_of.items())
    return f"targets:\n{targets}groups:\n  fleet: [{', '.join(dsn_of)}]\n"


# -- the server ----------------------------------------------------------------


def server(pgdata: Path) -> Any:
    """The embedded server of `pgdata` with max_connections raised (one restart)
    and autovacuum off: with a thousand idle databases its launcher starts a
    worker every few tens of milliseconds, noise on both sides of the figures."""
    import psycopg

    from runbook.pg import embedded

    found = embedded.start(pgdata, keep_running=True)
    with psycopg.connect(found.dsn, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET autovacuum = off")
        conn.execute("SELECT pg_reload_conf()")
        row = conn.execute("SELECT current_setting('max_connections')::int").fetchone()
        if row is not None and row[0] >= MAX_CONNECTIONS:
            return found
        conn.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
    embedded.stop(pgdata)
    return embedded.start(pgdata, keep_running=True)


def databases(found: Any, count: int) -> None:
    """fleet_0000 … from an empty template: those missing are made."""
    import psycopg

    with psycopg.connect(found.dsn, autocommit=True) as conn:
        have = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        if TEMPLATE not in have:
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        missing = [database(i) for i in range(count) if database(i) not in have]
        started = time.monotonic()
        for name in missing:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        if missing:
            print(
                f"made {len(missing)} databases in {time.monotonic() - started:.0f} s",
                file=sys.stderr,
            )


def fresh_journal(found: Any) -> str:
    import psycopg

    with psycopg.connect(found.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {JOURNAL_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {JOURNAL_DB}")
    return str(found.database_dsn(JOURNAL_DB))


# -- one measurement, in a process of its own -----------------------------------


def usage() -> tuple[float, float]:
    """(CPU seconds, peak RSS in MB) of this process so far."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime, me.ru_maxrss / 1024


def child_runbook(work: Path, targets: int, forks: int) -> dict[str, Any]:
    from runbook import report, service
    from runbook.cli import collector
    from runbook.commands import notifications
    from runbook.outcome import RunStatus

    if os.environ.get(DROPPED):
        drop_records()
    os.chdir(work)
    spec = service.RunSpec(
        playbook=Path("check.yaml"),
        inventory=Path(f"inventory{targets}.yaml"),
        targets=("fleet",),
        forks=forks,
    )
    cpu0, _ = usage()
    started = time.perf_counter()
    with collector.Quiet() as collecting:
        outcomes = service.run(
            spec,
            report.SilentReporter,
            None,
            notifications.notifier_for,
            on_loaded=collecting.steps_begin,
        )
    wall = time.perf_counter() - started
    cpu, peak = usage()
    passed = sum(1 for o in outcomes if o.status is RunStatus.OK)
    if passed != targets:
        bad = [o for o in outcomes if o.status is not RunStatus.OK][:3]
        raise SystemExit(f"runbook: {passed} of {targets} passed: {bad}")
    return {"wall_s": wall, "cpu_s": cpu - cpu0, "peak_mb": peak}


def drop_records() -> None:
    """Every run's records dropped at its store's group writer: `put` hands out
    a ticket and `wait` returns at once, so the writer thread never starts and
    nothing is appended; the rest of runbook works as ever."""
    from runbook.journal import writer

    def put(self: writer.Writer, owner: object, events: list[writer.Event]) -> int:
        with self._lock:
            self._queued += 1
            return self._queued

    def wait(self: writer.Writer, owner: object, ticket: int) -> None:
        return None

    writer.Writer.put = put  # type: ignore[method-assign]
    writer.Writer.wait = wait  # type: ignore[method-assign]


def child_floor(dsn_of: list[str], forks: int) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    import psycopg

    def one(dsn: str) -> bool:
        with psycopg.connect(dsn, autocommit=True, application_name="plain-pool") as conn:
            cur = conn.cursor()
            for i in range(QUERIES):
                cur.execute(statement(i))
                row = cur.fetchone()
                if row is None or row[0] != 1:
                    return False
        return True

    cpu0, _ = usage()
    started = time.perf_counter()
    with ThreadPoolExecutor(forks) as pool:
        passed = sum(pool.map(one, dsn_of))
    wall = time.perf_counter() - started
    cpu, peak = usage()
    if passed != len(dsn_of):
        raise SystemExit(f"floor: {passed} of {len(dsn_of)} passed")
    return {"wall_s": wall, "cpu_s": cpu - cpu0, "peak_mb": peak}


def child(args: argparse.Namespace) -> None:
    work = Path(args.child_work)
    if args.child == "warm":
        from runbook import service

        os.chdir(work)
        inventory = Path(f"inventory{args.child_targets}.yaml")
        service.prepare(service.RunSpec(Path("check.yaml"), inventory, targets=("fleet",)))
        figures: dict[str, Any] = {}
    elif args.child == "runbook":
        figures = child_runbook(work, args.child_targets, args.child_forks)
    else:
        dsn_of = json.loads((work / "dsns.json").read_text())[: args.child_targets]
        figures = child_floor(dsn_of, args.child_forks)
    print(json.dumps(figures))


def measure(kind: str, work: Path, targets: int, forks: int, env: dict[str, str]) -> dict[str, Any]:
    argv = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--child-work",
        str(work),
        "--child-targets",
        str(targets),
        "--child-forks",
        str(forks),
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} T={targets} forks={forks} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


# -- the whole bench ------------------------------------------------------------


def morning(pgdata: Path, count: int) -> dict[str, Any]:
    """The bundled morning constraint check (playbooks/constraint-monitoring/
    morning-check.yaml) on one demo database, then on `count` of them with
    --forks `count`, through the real CLI: the wall time of each."""
    import psycopg
    import yaml

    from runbook.pg import demo
    from runbook.pg.embedded import replace_database

    dsn = server(pgdata).dsn
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
            shutil.copytree(ROOT / part, root / part)
        inventory = yaml.safe_load((ROOT / "inventory.yaml").read_text())
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
                env={**os.environ, "PYTHONPATH": str(ROOT)},
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", default="10,100,1000", help="T values, comma-separated")
    parser.add_argument("--forks", default="1,10,100", help="forks values, comma-separated")
    parser.add_argument(
        "--journal",
        default="sqlite,postgresql",
        help="sqlite, postgresql, none (records dropped: runbook without its journal), comma-separated",
    )
    parser.add_argument("--pgdata", type=Path, help="keep the server and databases here")
    parser.add_argument("--no-save", action="store_true", help="leave bench/results.json alone")
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure each (T, forks) this many times"
    )
    parser.add_argument("--child", choices=["runbook", "floor", "warm"], help=argparse.SUPPRESS)
    parser.add_argument("--child-work", help=argparse.SUPPRESS)
    parser.add_argument("--child-targets", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-forks", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--morning", type=int, metavar="N", help="only the morning check: one database, then N"
    )
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.morning:
        if args.pgdata is None:
            raise SystemExit("--morning needs --pgdata (a server kept between runs)")
        found = morning(args.pgdata, args.morning)
        print(
            f"morning check (runbook run, the CLI): one database {found['one_s']} s; "
            f"{found['targets']} databases one after another {found['one_after_another_s']} s, "
            f"at once (--forks {found['targets']}) {found['all_s']} s"
        )
        record("fleet_morning", found)
        return
    sizes = [int(t) for t in args.targets.split(",")]
    forks_list = [int(f) for f in args.forks.split(",")]
    journals = args.journal.split(",")
    if unknown := set(journals) - set(JOURNALS):
        raise SystemExit(f"--journal: no such journal {', '.join(sorted(unknown))}")
    work = Path(tempfile.mkdtemp(prefix="runbook-fleet-"))
    pgdata = args.pgdata or work / "pgdata"
    from runbook.pg import embedded

    try:
        found = server(pgdata)
        databases(found, max(sizes))
        dsn_of = {f"t{i:04d}": str(found.database_dsn(database(i))) for i in range(max(sizes))}
        (work / "dsns.json").write_text(json.dumps(list(dsn_of.values())))
        (work / "check.yaml").write_text(playbook())
        for t in sizes:
            names = list(dsn_of)[:t]
            (work / f"inventory{t}.yaml").write_text(inventory({n: dsn_of[n] for n in names}))
        rounds = [run_all(found, work, sizes, forks_list, journals) for _ in range(args.rounds)]
    finally:
        if args.pgdata is None:
            embedded.stop(pgdata)
        shutil.rmtree(work, ignore_errors=True)
    show(rounds[0])
    if args.rounds > 1:
        spread = show_rounds(rounds)
        if not args.no_save:
            save_rounds(spread)
    elif not args.no_save:
        save(rounds[0])


def settle(found: Any) -> None:
    """A quiet server before each measurement: the last one's backends gone
    (a thousand exiting ones are the next one's noise), a checkpoint taken,
    then a moment's rest. Each side of a comparison starts the same way."""
    import psycopg

    with psycopg.connect(found.dsn, autocommit=True) as conn:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()
            if row is not None and row[0] == 0:
                break
            time.sleep(0.1)
        conn.execute("CHECKPOINT")
    time.sleep(1.0)


def run_all(
    found: Any, work: Path, sizes: list[int], forks_list: list[int], journals: list[str]
) -> list[dict[str, Any]]:
    serial = QUERIES * SLEEP
    rows: list[dict[str, Any]] = []
    base_env = {k: v for k, v in os.environ.items() if k != "RUNBOOK_JOURNAL"}
    # Warm the document and check caches once per inventory (every run reads them).
    for t in sizes:
        measure("warm", work, t, 1, base_env)
    for t in sizes:
        for forks in forks_list:
            if (t, forks) in SKIPPED:
                print(f"T={t} forks={forks}: skipped (250+ s)", file=sys.stderr)
                continue
            settle(found)
            floor = measure("floor", work, t, forks, base_env)
            row: dict[str, Any] = {
                "targets": t,
                "forks": forks,
                "ideal_s": t * serial / forks,
                "floor": floor,
            }
            for journal in journals:
                env = dict(base_env)
                for stale in (work / ".runbook").glob("journal.sqlite*"):
                    stale.unlink()
                if journal == "postgresql":
                    env["RUNBOOK_JOURNAL"] = fresh_journal(found)
                elif journal == "none":
                    env[DROPPED] = "1"
                settle(found)
                row[journal] = measure("runbook", work, t, forks, env)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    return rows


def show(rows: list[dict[str, Any]]) -> None:
    print(
        "| T | forks | ideal | floor wall (eff.) | floor CPU/target | journal "
        "| runbook wall (eff.) | runbook / floor | runbook CPU/target | runbook peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        t, ideal, floor = row["targets"], row["ideal_s"], row["floor"]
        for journal in JOURNALS:
            if journal not in row:
                continue
            mine = row[journal]
            print(
                f"| {t} | {row['forks']} | {ideal:.2f} s "
                f"| {floor['wall_s']:.2f} s ({ideal / floor['wall_s']:.2f}) "
                f"| {floor['cpu_s'] / t * 1000:.1f} ms | {journal} "
                f"| {mine['wall_s']:.2f} s ({ideal / mine['wall_s']:.2f}) "
                f"| {mine['wall_s'] / floor['wall_s']:.2f}x "
                f"| {mine['cpu_s'] / t * 1000:.1f} ms | {mine['peak_mb']:.0f} MB |"
            )


def show_rounds(rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Runbook's wall over the floor's, each round's (the floor measured
    again in each): lowest, median and highest. The machine's noise is
    larger than one round can tell."""
    spread = []
    print("\n| T | forks | journal | rounds | lowest | median | highest |")
    print("|---|---|---|---|---|---|---|")
    for at, row in enumerate(rounds[0]):
        entry: dict[str, Any] = {"targets": row["targets"], "forks": row["forks"]}
        for journal in JOURNALS:
            if journal not in row:
                continue
            ratios = sorted(
                round(r[at][journal]["wall_s"] / r[at]["floor"]["wall_s"], 2) for r in rounds
            )
            entry[journal] = ratios
            print(
                f"| {row['targets']} | {row['forks']} | {journal} | {len(ratios)} "
                f"| {ratios[0]:.2f}x | {statistics.median(ratios):.2f}x | {ratios[-1]:.2f}x |"
            )
        spread.append(entry)
    return spread


def record(key: str, figures: dict[str, Any]) -> None:
    """`figures` under `key` in bench/results.json, the other keys kept."""
    path = ROOT / "bench" / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[key] = figures
    path.write_text(json.dumps(results, indent=2) + "\n")


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def save_rounds(spread: list[dict[str, Any]]) -> None:
    record("fleet_rounds", {"when": now(), "runbook_over_floor": spread})


def save(rows: list[dict[str, Any]]) -> None:
    record("fleet", {"when": now(), "queries": QUERIES, "sleep_s": SLEEP, "rows": rows})


if __name__ == "__main__":
    main()
