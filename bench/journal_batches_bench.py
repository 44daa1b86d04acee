"""What a fleet's journal costs the PostgreSQL journal, batch by batch: the
batches a real fleet's writers wrote, captured, then appended again into an
empty journal, one after another, with the CPU of both sides measured.

    .venv/bin/python bench/journal_batches_bench.py --pgdata /var/tmp/runbook-fleet-bench/pg
        [--targets 1000] [--forks 100] [--rounds 5]

The fleet is bench/fleet_bench.py's (its server, its T databases, its check
playbook of 5 queries with gates; `--pgdata` the same folder), run once in
this process with a PostgreSQL journal, each batch its writers appended
kept (the events as the recorders put them). Each is then appended again
into a fresh journal database (`journal_replay`, made anew each round) on
one connection, in the same order, in these ways:

- as runbook sends them: each batch in one transaction, its rows in parts
  of 1, 2, 4 … 64 (runbook.journal.events.in_parts);
- in parts of up to 100 rows, one statement text per row count (as before
  2026-12-04): what the parts of powers of two saved;
- each 4 batches merged into one: what a transaction costs, apart from its
  rows.

Reported, per run of the fleet (the median over the rounds): the appending
thread's CPU (time.thread_time) and the journal backend's (its user+system
time from /proc, which is Linux's), and the wall time of the replay. The
fleet's wall time is not: bench/fleet_bench.py measures that. Figures go to
stdout as a Markdown table and to bench/results.json ("journal_batches").
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import fleet_bench  # noqa: E402  (a sibling script)

REPLAY_DB = "journal_replay"
Row = TypeVar("Row")
Event = tuple[str, str | None, str, dict[str, Any]]


def capture(pgdata: Path, targets: int, forks: int) -> list[list[Event]]:
    """The batches a fleet of `targets` wrote to a PostgreSQL journal: the
    fleet bench's own run (fleet_bench.child_runbook), its writers' batches kept."""
    import tempfile

    from runbook.journal import writer

    found = fleet_bench.server(pgdata)
    fleet_bench.databases(found, targets)
    dsn_of = {f"t{i:04d}": str(found.database_dsn(fleet_bench.database(i))) for i in range(targets)}
    batches: list[list[Event]] = []
    write = writer.Writer._write

    def kept(self: writer.Writer, batch: list[tuple[object, list[Event]]]) -> Any:
        batches.append([event for _, events in batch for event in events])
        return write(self, batch)

    with tempfile.TemporaryDirectory() as work:
        Path(work, "check.yaml").write_text(fleet_bench.playbook())
        Path(work, f"inventory{targets}.yaml").write_text(fleet_bench.inventory(dsn_of))
        os.environ["RUNBOOK_JOURNAL"] = fleet_bench.fresh_journal(found)
        here = Path.cwd()
        writer.Writer._write = kept  # type: ignore[method-assign]
        try:
            fleet_bench.child_runbook(Path(work), targets, forks)  # changes directory to `work`
        finally:
            writer.Writer._write = write  # type: ignore[method-assign]
            os.chdir(here)
            del os.environ["RUNBOOK_JOURNAL"]
    return batches


def fixed_parts(rows: Sequence[Row], size: int) -> Iterator[Sequence[Row]]:
    """Parts of `size` rows and the rest: one statement text per row count."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def replay(found: Any, batches: list[list[Event]], way: str) -> dict[str, float]:
    """Append `batches` into a fresh journal `way`; CPU and wall, in seconds."""
    import psycopg

    from runbook.journal import postgres, postgres_rows
    from runbook.journal.events import in_parts, prepare
    from runbook.journal.store import StoreConfig

    with psycopg.connect(found.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {REPLAY_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {REPLAY_DB}")
    if way == "merged":
        batches = [
            [event for batch in batches[i : i + 4] for event in batch]
            for i in range(0, len(batches), 4)
        ]
    kept = postgres.in_parts, postgres_rows.ROWS_A_STATEMENT
    if way == "fixed":
        postgres.in_parts = fixed_parts
        postgres_rows.ROWS_A_STATEMENT = 100
    store = postgres.PostgresStore(
        StoreConfig("postgresql", dsn=str(found.database_dsn(REPLAY_DB)))
    )
    try:
        pid = store.conn.info.backend_pid
        server0, client0, wall0 = backend_cpu(pid), time.thread_time(), time.perf_counter()
        for batch in batches:
            store.append_prepared(prepare(batch))
        wall = time.perf_counter() - wall0
        client = time.thread_time() - client0
        assert store.conn.info.backend_pid == pid  # no append failed and reconnected
        server = backend_cpu(pid) - server0
    finally:
        store.close()
        postgres.in_parts, postgres_rows.ROWS_A_STATEMENT = kept
        assert postgres.in_parts is in_parts
    return {"batches": len(batches), "client_s": client, "server_s": server, "wall_s": wall}


WAYS = {
    "as sent": "as runbook sends them (parts of 1, 2, 4 … 64 rows)",
    "fixed": "parts of up to 100 rows (a statement text per row count)",
    "merged": "4 batches merged into one transaction",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pgdata", type=Path, required=True)
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--forks", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    batches = capture(args.pgdata, args.targets, args.forks)
    found = fleet_bench.server(args.pgdata)
    measured: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    for _ in range(args.rounds):
        for way in WAYS:  # interleaved: the machine's drift falls on each alike
            measured[way].append(replay(found, batches, way))
    runs = args.targets
    rows = []
    print(f"{len(batches)} batches of a fleet of {runs} runs, replayed {args.rounds} times\n")
    print("| appended | transactions | client CPU a run | server CPU a run | wall |")
    print("|---|---|---|---|---|")
    for way, rounds in measured.items():
        row = {
            "way": way,
            "transactions": int(rounds[0]["batches"]),
            "client_ms_a_run": statistics.median(r["client_s"] for r in rounds) * 1000 / runs,
            "server_ms_a_run": statistics.median(r["server_s"] for r in rounds) * 1000 / runs,
            "wall_s": statistics.median(r["wall_s"] for r in rounds),
        }
        rows.append(row)
        print(
            f"| {WAYS[way]} | {row['transactions']} | {row['client_ms_a_run']:.2f} ms"
            f" | {row['server_ms_a_run']:.2f} ms | {row['wall_s']:.2f} s |"
        )
    fleet_bench.record(
        "journal_batches",
        {
            "when": fleet_bench.now(),
            "targets": runs,
            "forks": args.forks,
            "batches": len(batches),
            "rounds": args.rounds,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
