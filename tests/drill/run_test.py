"""`runbook drill run` end to end on a real server: the copy made, marked and
dropped, the injects, the procedure and the recovery run on it (never on the
target), objectives measured, notifications labelled and routed, the record
journaled; notes, sign-off and the trend of recorded drills."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import psycopg
import pytest

from tests.conftest import REPO, Project

INVENTORY = """targets:
  db:
    dsn: {dsn!r}
    protected: true
default_target: db
channels:
  pager: {{type: file, path: pager.jsonl}}
  drills: {{type: file, path: drills.jsonl}}
policies:
  oncall:
    {route}severities:
      CRITICAL:
        acknowledge_within: 15m
        mitigate_within: 30m
        levels:
          - {{after: 0m, notify: [pager]}}
"""

EMERGENCY = """name: fix-orders
kind: emergency
escalation: oncall
steps:
  - name: Open the incident
    escalate: {severity: CRITICAL, key: orders-broken, message: "orders are broken on {{ target.name }}"}
  - name: Tell the team
    notify: {channels: [pager], message: "working on it"}
  - name: Production stopped?
    confirm: Has production been stopped?
  - name: Call the vendor
    shell: ["sh", "-c", "echo called > vendor-called.txt"]
  - name: Remove the bad rows
    id: fix
    sql: DELETE FROM orders WHERE qty < 0
  - name: No bad rows left
    query: SELECT count(*) AS bad FROM orders WHERE qty < 0
    register: left
    gate: {that: "left.first.bad == 0", severity: CRITICAL, message: "bad rows left"}
"""

RECOVERY = """name: check-orders
kind: recovery
steps:
  - name: Orders are whole
    query: SELECT count(*) AS n FROM orders
    register: orders
    gate: {that: "orders.first.n >= 3", severity: CRITICAL, message: "orders missing"}
"""

DRILL = """name: orders-drill
kind: drill
drill:
  exercise: fix-orders.yaml
  recovery: check-orders.yaml
  heartbeat: orders.created
objectives:
  recover: 10m
  steps: {{fix: {fix}}}
steps:
  - name: Break the orders
    sql: INSERT INTO orders (qty) VALUES (-1), (-2)
"""


def setup(project: Project, route: bool = False, fix: str = "5m") -> None:
    project.write(
        "inventory.yaml",
        INVENTORY.format(dsn=project.dsn, route="drill_route: [drills]\n    " if route else ""),
    )
    project.playbook(EMERGENCY, "fix-orders.yaml")
    project.playbook(RECOVERY, "check-orders.yaml")
    project.playbook(DRILL.format(fix=fix), "orders-drill.yaml")
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE orders (id serial PRIMARY KEY, qty int,"
            " created timestamptz DEFAULT now() - interval '90 seconds')"
        )
        conn.execute("INSERT INTO orders (qty) VALUES (1), (2), (3)")


def drill(project: Project, *extra: str) -> Any:
    return project.run(
        "drill", "run", "playbooks/orders-drill.yaml", "--yes",
        "--participant", "alice:commander", "--participant", "bob", *extra,
    )  # fmt: skip


def journal_drills(project: Project) -> list[dict[str, Any]]:
    journal = project.journal()
    try:
        return [d.as_dict() for d in journal.drills()]
    finally:
        journal.close()


def databases(project: Project) -> list[str]:
    with psycopg.connect(project.dsn) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'drill_%'")
        return [r[0] for r in rows]


def lines(project: Project, name: str) -> list[dict[str, Any]]:
    path = project.root / name
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_drill_runs_the_procedure_on_a_marked_copy_and_scores_it(project: Project) -> None:
    setup(project)
    result = drill(project)
    assert result.exit_code == 0, result.output
    [record] = journal_drills(project)
    assert record["status"] == "completed", record
    assert record["copy_method"] == "template"
    assert [p["name"] for p in record["participants"]] == ["alice", "bob"]
    assert [r["role"] for r in record["run_ids"]] == ["inject", "procedure", "recovery"]
    # The target itself is untouched: no bad rows were injected there, none deleted.
    with psycopg.connect(project.dsn) as conn:
        assert conn.execute("SELECT array_agg(qty ORDER BY id) FROM orders").fetchone() == (
            [1, 2, 3],
        )
    assert record["copy_db"] not in databases(project)  # the copy is dropped
    runs = {r["id"]: r for r in project.runs()}
    for ref in record["run_ids"]:
        run = runs[ref["run_id"]]
        assert run["mode"] == "drill" and run["selection"]["drill"]["id"] == record["id"]
    procedure = runs[record["run_ids"][1]["run_id"]]
    by_name = {s["name"]: s for s in procedure["steps"]}
    assert by_name["Remove the bad rows"]["rowcount"] == 2  # on the copy, where the injects were
    # A shell step would reach real systems: shown, not run.
    assert by_name["Call the vendor"]["status"] == "skipped"
    assert not (project.root / "vendor-called.txt").exists()
    results = record["objective_results"]
    assert results["severity"] == "CRITICAL"
    objectives = {o["name"]: o for o in results["objectives"]}
    assert objectives["time to respond"]["target_s"] == 900.0  # the policy's acknowledge_within
    assert objectives["time to mitigate"]["target_s"] == 1800.0  # its mitigate_within
    assert objectives["time to recover"]["target_s"] == 600.0  # the drill's objectives
    assert all(o["status"] == "pass" for o in objectives.values()), objectives
    [step] = results["steps"]
    assert (step["name"], step["target_s"], step["status"]) == (
        "Remove the bad rows",
        300.0,
        "pass",
    )
    [answer] = results["answers"]
    assert answer["by"] == "--yes" and answer["answered_after_s"] is not None
    assert 80 <= record["rpo_s"] <= 600  # the newest order was 90 s old when copied
    assert "time to recover" in result.output and "PASS" in result.output


def test_drill_notifications_are_labelled_and_never_reach_the_real_pager(project: Project) -> None:
    setup(project)
    assert drill(project).exit_code == 0
    assert lines(project, "pager.jsonl") == []  # no drill route: journaled, sent nowhere
    incidents = json.loads(project.run("incidents", "--format", "json").output)
    [incident] = incidents
    assert incident["key"].startswith("drill:") and incident["message"].startswith("[DRILL]")
    # A later escalation tick finds no timeline for it: still nobody paged.
    assert project.run("escalations", "tick").exit_code == 0
    assert lines(project, "pager.jsonl") == []


def test_a_drill_route_gets_the_notifications_labelled(project: Project) -> None:
    setup(project, route=True)
    assert drill(project).exit_code == 0
    assert lines(project, "pager.jsonl") == []
    sent = lines(project, "drills.jsonl")
    assert len(sent) == 2 and all("[DRILL]" in json.dumps(n) for n in sent)


def test_a_step_over_its_target_fails_the_drill_with_exit_1(project: Project) -> None:
    setup(project, fix="0s")
    result = drill(project)
    assert result.exit_code == 1, result.output
    [record] = journal_drills(project)
    assert record["objective_results"]["steps"][0]["status"] == "fail"


def test_keep_leaves_the_marked_copy_and_says_so(project: Project) -> None:
    setup(project)
    assert drill(project, "--keep").exit_code == 0
    [record] = journal_drills(project)
    assert record["copy_db"] in databases(project)
    assert "was kept" in record["reason"]
    with psycopg.connect(project.dsn) as conn:
        [comment] = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (record["copy_db"],),
        ).fetchone()
    assert comment.startswith(f"runbook drill {record['id']}")
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {record['copy_db']} WITH (FORCE)")


def test_a_drill_never_writes_to_a_database_without_its_mark(project: Project) -> None:
    from runbook import service
    from runbook.report import SilentReporter

    setup(project)
    name = project.dsn.split("dbname=")[1].split()[0]
    fix = project.playbook(
        "name: fix\nkind: emergency\nsteps:\n  - {name: fix, sql: DELETE FROM orders}\n",
        "fix.yaml",
    )
    spec = service.RunSpec(
        playbook=fix,
        inventory=project.root / "inventory.yaml",
        targets=("db",),
        mode="drill",
        yes=True,
        # The target's own database named as if it were the copy: it has no mark.
        drill={"id": "x", "role": "procedure", "database": name, "server": "same", "mark": "m"},
    )
    [outcome] = service.run(spec, SilentReporter)
    assert outcome.status.value == "failed"
    assert "not this drill's copy" in outcome.reason or any(
        "not this drill's copy" in (s.error or "") for s in outcome.steps
    )
    with psycopg.connect(project.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (3,)


def test_a_drill_playbook_does_not_run_as_an_ordinary_run(project: Project) -> None:
    setup(project)
    result = project.run("run", "playbooks/orders-drill.yaml")
    assert result.exit_code == 2 and "runbook drill run" in result.output


def test_notes_signoff_and_the_trend_of_three_drills(project: Project) -> None:
    setup(project)
    for _ in range(3):
        assert drill(project, "-q").exit_code == 0
    rows = json.loads(project.run("drill", "list", "--format", "json").output)
    assert len(rows) == 3
    assert rows[-1]["trend"] == "first"
    assert all(r["time_to_recover_s"] is not None for r in rows)
    assert rows[0]["trend"].split()[0] in ("faster", "slower", "same")
    newest = rows[0]["id"]
    said = project.run(
        "drill",
        "note",
        newest,
        "--action",
        "Page the DBA sooner",
        "--owner",
        "alice",
        "--due",
        "2027-01-15",
    )
    assert said.exit_code == 0, said.output
    assert project.run("drill", "note", newest, "--finding", "the pager was slow").exit_code == 0
    assert project.run("drill", "note", newest, "--action", "x").exit_code == 2  # owner, due
    # Whoever ran it cannot sign it off.
    refused = project.run("drill", "signoff", newest)
    assert refused.exit_code == 4 and "someone else signs it off" in refused.output
    card = json.loads(project.run("drill", "show", newest, "--format", "json").output)
    assert [a["text"] for a in card["actions"]] == ["Page the DBA sooner"]
    assert [f["text"] for f in card["findings"]] == ["the pager was slow"]
    assert card["signoffs"] == []


def test_a_busy_source_is_copied_by_dump_into_the_embedded_server(project: Project) -> None:
    setup(project)
    # Someone is connected to the target: CREATE DATABASE … TEMPLATE is refused,
    # so `copy: auto` restores a dump into the embedded server instead.
    try:
        with psycopg.connect(project.dsn) as busy:
            busy.execute("SELECT 1")
            result = drill(project)
    finally:
        project.run("sandbox", "down")  # the embedded server the copy was restored into
    assert result.exit_code == 0, result.output
    [record] = journal_drills(project)
    assert record["copy_method"] == "dump"
    assert "template copy failed" in record["reason"]
    assert record["status"] == "completed"
    procedure = next(r for r in project.runs() if r["id"] == record["run_ids"][1]["run_id"])
    fixed = next(s for s in procedure["steps"] if s["name"] == "Remove the bad rows")
    assert fixed["rowcount"] == 2
    with psycopg.connect(project.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (3,)


def test_a_shell_step_marked_drill_run_runs_in_a_drill(project: Project) -> None:
    setup(project)
    text = (project.root / "playbooks" / "fix-orders.yaml").read_text()
    project.playbook(
        text.replace(
            '    shell: ["sh", "-c", "echo called > vendor-called.txt"]',
            '    shell: ["sh", "-c", "echo called > vendor-called.txt"]\n    drill: run',
        ),
        "fix-orders.yaml",
    )
    assert drill(project).exit_code == 0
    assert (project.root / "vendor-called.txt").exists()


@pytest.fixture(scope="session")
def reviewer() -> str:
    """A second real OS user (the suite runs as root; skipped otherwise)."""
    import os
    import pwd
    import shutil
    import subprocess

    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("needs root and useradd to make a second OS user")
    name = "rbdrillreview"
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", name], check=True)
    return name


def as_user(user: str, *args: str) -> list[str]:
    """`runbook ARGS` as another OS user. This interpreter may live where only
    root can read (pyenv under /root): then the system's Python of the same
    minor version runs the same packages and source."""
    import os
    import site
    import subprocess
    import sys

    python = sys.executable
    readable = subprocess.run(["runuser", "-u", user, "--", python, "-c", ""], check=False)
    if readable.returncode != 0:
        python = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
        if not os.path.exists(python):
            pytest.skip(f"no Python the user {user} may run")
    paths = [str(REPO), *site.getsitepackages()]
    env = ["env", f"PYTHONPATH={os.pathsep.join(paths)}", "RUNBOOK_OPERATOR="]
    return ["runuser", "-u", user, "--", *env, python, "-m", "runbook", *args]


def test_someone_else_signs_a_drill_off(project: Project, reviewer: str) -> None:
    import subprocess

    setup(project)
    assert drill(project, "-q").exit_code == 0
    [record] = journal_drills(project)
    # The reviewer reads and writes the same journal (a shared folder here;
    # a team would share a PostgreSQL journal).
    for path in [project.root, *project.root.rglob("*")]:
        # SQLite's -wal and -shm files go when the last connection closes (one
        # left to the garbage collector may close now): one gone needs nothing.
        with contextlib.suppress(FileNotFoundError):
            path.chmod(0o777 if path.is_dir() else 0o666)
    project.root.parent.chmod(0o755)
    signed = subprocess.run(
        as_user(reviewer, "drill", "signoff", record["id"], "--comment", "reviewed"),
        cwd=project.root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    assert f"signed off by {reviewer}" in signed.stdout
    card = json.loads(project.run("drill", "show", record["id"], "--format", "json").output)
    assert [(s["by"], s["text"]) for s in card["signoffs"]] == [(reviewer, "reviewed")]
    rows = json.loads(project.run("drill", "list", "--format", "json").output)
    assert rows[0]["signed_off_by"] == [reviewer]


def test_a_busy_target_is_copied_from_its_idle_golden_copy(project: Project) -> None:
    setup(project)
    source = project.dsn.split("dbname=")[1].split()[0]
    golden = f"{source}_golden"
    with psycopg.connect(project.dsn.replace(source, "postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {golden} TEMPLATE {source}")
    try:
        text = (project.root / "inventory.yaml").read_text()
        project.write(
            "inventory.yaml",
            text.replace(
                "    protected: true\n", f"    protected: true\n    golden_copy: {golden}\n"
            ),
        )
        with psycopg.connect(project.dsn) as busy:  # the target is in use
            busy.execute("SELECT 1")
            result = drill(project)
        assert result.exit_code == 0, result.output
        [record] = journal_drills(project)
        assert record["copy_method"] == "template"  # from the golden copy, on the same server
    finally:
        with psycopg.connect(project.dsn.replace(source, "postgres"), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {golden} WITH (FORCE)")


def test_a_drill_that_says_notify_real_pages_the_first_level_labelled(project: Project) -> None:
    setup(project)
    path = project.root / "playbooks" / "orders-drill.yaml"
    path.write_text(path.read_text().replace("  heartbeat:", "  notify: real\n  heartbeat:"))
    assert drill(project).exit_code == 0
    sent = lines(project, "pager.jsonl")
    assert len(sent) == 2 and all("[DRILL]" in json.dumps(n) for n in sent)
    assert project.run("escalations", "tick").exit_code == 0
    assert len(lines(project, "pager.jsonl")) == 2  # the first level only, once


def test_the_scorecard_in_three_formats_with_its_timeline(project: Project) -> None:
    from tests.runreport.render_test import classes, parse, self_contained

    setup(project)
    result = drill(project)
    assert result.exit_code == 0, result.output
    [record] = journal_drills(project)
    folder = project.root / ".runbook" / "drills" / record["id"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "scorecard.html",
        "scorecard.json",
        "scorecard.md",
    ]
    assert folder.stat().st_mode & 0o777 == 0o700
    html = (folder / "scorecard.html").read_text()
    self_contained(html)
    tags = parse(html)
    objectives = [o["data-objective"] for o in classes(tags, "line", "objective")]
    assert objectives == ["time to respond", "time to mitigate", "time to recover"]
    assert [t["data-step"] for t in classes(tags, "line", "target")] == ["5"]  # "fix"
    steps = [g["data-step"] for g in classes(tags, "g", "step")]
    assert steps == ["1", "2", "3", "5", "6", "1"]  # the procedure's that ran, the recovery's
    assert [g["data-step"] for g in classes(tags, "g", "unstarted")] == ["4"]  # shell: shown
    md = project.run("drill", "show", record["id"], "--format", "md").output
    assert "## Objectives" in md and "| time to recover | 10.0 min |" in md
    assert "| alice | commander |" in md
    text = project.run("drill", "show", record["id"]).output
    assert "PASS" in text and "time to recover" in text


@pytest.mark.timeout(120)
def test_a_drill_killed_mid_way_is_marked_interrupted_and_its_copy_dropped(
    project: Project,
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    setup(project)
    slow = (
        (project.root / "playbooks" / "fix-orders.yaml")
        .read_text()
        .replace(
            "    sql: DELETE FROM orders WHERE qty < 0",
            "    sql: DELETE FROM orders WHERE qty < 0 AND pg_sleep(60) IS NOT NULL",
        )
    )
    project.playbook(slow, "fix-orders.yaml")
    process = subprocess.Popen(
        [sys.executable, "-m", "runbook", "drill", "run", "playbooks/orders-drill.yaml", "--yes"],
        cwd=project.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        drills = journal_drills(project)
        if drills and drills[0]["status"] == "running":
            runs = project.runs()
            if any(s["status"] == "running" for r in runs for s in r["steps"]):
                break
        time.sleep(0.2)
    else:
        raise AssertionError("the drill's procedure never got going")
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    [before] = journal_drills(project)
    assert before["status"] == "running" and before["copy_db"] in databases(project)
    listed = json.loads(project.run("drill", "list", "--format", "json").output)
    assert listed[0]["status"] == "interrupted"
    [after] = journal_drills(project)
    assert "process" in after["reason"] and "was dropped" in after["reason"], after["reason"]
    assert after["copy_db"] not in databases(project)
    assert all(r["status"] != "running" for r in project.runs())  # its runs reconciled too


def test_variables_reach_the_procedure(project: Project) -> None:
    setup(project)
    path = project.root / "playbooks" / "fix-orders.yaml"
    text = path.read_text().replace(
        "escalation: oncall\n", "escalation: oncall\nvars: {floor: null}\n"
    )
    path.write_text(text.replace("WHERE qty < 0\n", "WHERE qty < {{ floor }}\n"))
    missing = drill(project)
    assert missing.exit_code == 2 and "floor" in missing.output  # checked before any copy
    assert drill(project, "-e", "floor=0").exit_code == 0
    [record] = journal_drills(project)
    assert record["status"] == "completed"


def _drill_row(i: int, status: str, started_at: str, pid: int | None) -> dict[str, Any]:
    import socket

    return {
        "id": f"drill{i:08d}", "playbook": "fix-orders", "playbook_path": "playbooks/fix.yaml",
        "exercise": "fix-orders", "target": "db", "copy_db": f"copy_{i}", "copy_method": "template",
        "operator": "tester", "os_user": "tester", "host": socket.gethostname(), "pid": pid,
        "pid_started": 1.0, "participants": None, "started_at": started_at, "inject_at": None,
        "ended_at": None if status == "running" else started_at, "status": status,
        "run_ids": None, "objective_results": None, "rpo_s": None, "kept": 1, "reason": None,
    }  # fmt: skip


def test_a_dead_drill_is_reconciled_however_many_drills_came_after_it(project: Project) -> None:
    # A drill whose process was killed, then 250 drills that ended: the dead
    # one was once looked for among the latest 200 drills only, and stayed
    # "running" for ever.
    dead = {
        **_drill_row(0, "running", "2026-11-01T08:00:00.000Z", pid=2**22 + 1),  # above pid_max
        "playbook": "dead-one",
        "playbook_path": "playbooks/dead-one.yaml",
    }
    later = [
        _drill_row(i, "completed", f"2026-11-02T{i // 60:02d}:{i % 60:02d}:00.000Z", pid=None)
        for i in range(1, 251)
    ]
    at = "2026-11-02T08:00:00.000Z"
    events = [(at, None, "drill.start", {"table": "drills", "op": "insert", "row": row})
              for row in [dead, *later]]  # fmt: skip
    journal = project.journal()
    try:
        journal.append(events)
    finally:
        journal.close()
    # The listing reconciles first, and shows drills newest first: the dead
    # one only with a limit past the 250 after it; of its playbook, first.
    listed = project.run("drill", "list", "--format", "json", "--limit", "1000")
    assert listed.exit_code == 0, listed.output
    by_id = {d["id"]: d for d in json.loads(listed.output)}
    assert len(by_id) == 251 and by_id["drill00000000"]["status"] == "interrupted"
    assert {d["status"] for i, d in by_id.items() if i != "drill00000000"} == {"completed"}
    mine = project.run("drill", "list", "dead-one", "--format", "json", "--limit", "5")
    assert [d["id"] for d in json.loads(mine.output)] == ["drill00000000"]
    journal = project.journal()
    try:
        record = journal.drill("drill00000000")
    finally:
        journal.close()
    assert record is not None and "is gone" in (record.reason or "")


@pytest.mark.parametrize("copy", ["template", "dump"])
def test_a_target_out_of_reach_is_a_clear_error_without_its_password(
    project: Project, copy: str
) -> None:
    """Nothing listens at the target: the copy's own error (the connection
    refused, not pg_dump's hint that follows it), exit 3, the password in
    its DSN nowhere, no drill left running."""
    setup(project)
    gone = "postgresql://ops:s3cretpw@127.0.0.1:1/ops"
    project.write("inventory.yaml", INVENTORY.format(dsn=gone, route=""))
    project.playbook(
        DRILL.format(fix="5m").replace("  heartbeat:", f"  copy: {copy}\n  heartbeat:"),
        "orders-drill.yaml",
    )
    try:
        result = drill(project)
    finally:
        if copy == "dump":
            project.run("sandbox", "down")
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output and "s3cretpw" not in result.output
    said = {"template": "cannot copy db on its server", "dump": "pg_dump: error: connection"}
    assert said[copy] in result.output and "port 1 failed" in result.output, result.output
