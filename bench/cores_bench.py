"""Where a fleet's time goes on this machine: the floor of bench/fleet_bench.py
(a psycopg thread pool, T targets, 5 queries of 50 ms each) with X ms of busy
client CPU added to each target, in one process or split over K processes.

    .venv/bin/python bench/cores_bench.py --pgdata /var/tmp/runbook-fleet-bench/pg
        [--targets 1000] [--forks 100] [--burn 0,1.5,2,3] [--processes 1,2] [--rounds 2]

If the interpreter's lock were what slows a fleet with more client CPU a
target, splitting the targets over two processes (each with forks / K
threads) would win the time back. If the machine's cores are (the server's
backends share them), it would not. It also reports the server's CPU over
each measurement: the postmaster's and its children's user+system time from
/proc (backends that ended included), which is Linux's.

The server and its databases are fleet_bench.py's (`--pgdata` the same
folder: they are made there if missing). Figures go to stdout only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import fleet_bench  # noqa: E402  (a sibling script)


def server_cpu(pgdata: Path) -> float:
    """Seconds of CPU the server's processes used so far (ended backends included)."""
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0
    for each in [str(pid), *children]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # a backend that ended meanwhile: counted in the parent's cutime
        # utime, stime, cutime, cstime
        total += sum(int(f) for f in fields[11:15])
    return total / tick


def child(dsns: list[str], forks: int, burn_ms: float, processes: int) -> dict[str, Any]:
    """The floor's targets, `burn_ms` of busy CPU each (in 7 slices), over
    `processes` forked processes of forks // processes threads each."""
    import psycopg

    slice_s = burn_ms / 1000 / 7

    def burn() -> None:
        end = time.thread_time() + slice_s
        while time.thread_time() < end:
            pass

    def one(dsn: str) -> None:
        burn()
        with psycopg.connect(dsn, autocommit=True, application_name="cores-bench") as conn:
            cur = conn.cursor()
            for i in range(fleet_bench.QUERIES):
                burn()
                cur.execute(fleet_bench.statement(i))
                row = cur.fetchone()
                assert row is not None and row[0] == 1
            burn()

    def share(part: list[str], threads: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, part))

    started = time.perf_counter()
    pids = []
    for k in range(processes):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                share(dsns[k::processes], max(1, forks // processes))
            finally:
                os._exit(0)
        pids.append(pid)
    failed = [p for p in pids if os.waitpid(p, 0)[1] != 0]
    wall = time.perf_counter() - started
    used = os.times()
    if failed:
        raise SystemExit(f"{len(failed)} process(es) failed")
    return {"wall_s": wall, "client_cpu_s": used.children_user + used.children_system}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pgdata", type=Path, required=True, help="fleet_bench.py's server")
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--forks", type=int, default=100)
    parser.add_argument("--burn", default="0,1.5,2,3", help="ms of client CPU added a target")
    parser.add_argument("--processes", default="1,2", help="processes the targets are split over")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        burn_ms, processes = args.child.split(":")
        dsns = json.loads(os.environ["CORES_BENCH_DSNS"])
        print(json.dumps(child(dsns, args.forks, float(burn_ms), int(processes))))
        return
    found = fleet_bench.server(args.pgdata)
    fleet_bench.databases(found, args.targets)
    dsns = [str(found.database_dsn(fleet_bench.database(i))) for i in range(args.targets)]
    env = {**os.environ, "CORES_BENCH_DSNS": json.dumps(dsns)}
    print(f"T = {args.targets}, forks = {args.forks}, {os.cpu_count()} cores")
    print("| round | client CPU added a target | processes | wall | client CPU | server CPU |")
    print("|---|---|---|---|---|---|")
    for n in range(1, args.rounds + 1):
        for burn_ms in args.burn.split(","):
            for processes in args.processes.split(","):
                before = server_cpu(args.pgdata)
                out = subprocess.run(
                    [sys.executable, __file__, "--pgdata", str(args.pgdata), "--forks",
                     str(args.forks), "--child", f"{burn_ms}:{processes}"],
                    env=env, capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
                figures = json.loads(out)
                used = server_cpu(args.pgdata) - before
                print(
                    f"| {n} | {burn_ms} ms | {processes} | {figures['wall_s']:.2f} s"
                    f" | {figures['client_cpu_s']:.2f} s | {used:.2f} s |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
