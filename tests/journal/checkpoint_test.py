"""Checkpoints: what a hash chain alone cannot see (a cut-off tail, a recomputed
chain), signed with a key kept outside the journal, checked offline."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runbook.journal import checkpoint, hashing
from runbook.journal.sqlite import Journal

from ..conftest import REPO, Project

# They open, cut and rewrite the SQLite file itself; the PostgreSQL journal's
# checkpoints are tested in postgres_test.py.
pytestmark = pytest.mark.sqlite_only

BOOK = "name: j\nkind: check\nsteps:\n  - {name: One, query: SELECT 1}\n  - {name: Two, query: SELECT 2}\n"


def _run(project: Project, times: int = 1) -> None:
    book = project.playbook(BOOK)
    for _ in range(times):
        assert project.run("run", str(book)).exit_code == 0


def _db(project: Project) -> sqlite3.Connection:
    return sqlite3.connect(project.root / ".runbook" / "journal.sqlite", isolation_level=None)


def _keep_checkpoint(project: Project, name: str = "kept.json") -> Path:
    """`runbook journal checkpoint`, kept in a file outside the journal."""
    result = project.run("journal", "checkpoint")
    assert result.exit_code == 0, result.output
    path = project.root / name
    path.write_text(result.stdout)
    return path


def _verify(project: Project, *args: str) -> tuple[int, str, str]:
    """Exit code, the result (stdout: problems, notes, verdict), and all that was shown."""
    result = project.run("journal", "verify", *args)
    return result.exit_code, result.stdout, result.stdout + result.stderr


@pytest.fixture
def key(project: Project, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A signing key made by `runbook journal keygen`, configured by environment."""
    path = project.root.parent / f"{project.root.name}-keys" / "journal.key"
    result = project.run("journal", "keygen", "--out", str(path))
    assert result.exit_code == 0, result.output
    assert "BEGIN PUBLIC KEY" in result.stdout
    monkeypatch.setenv("RUNBOOK_JOURNAL_KEY_FILE", str(path))
    return path


def _recompute_chain(db: sqlite3.Connection) -> None:
    """What a forger with write access does: every hash made again."""
    prev = hashing.GENESIS
    rows = db.execute("SELECT seq, at, run_id, kind, payload FROM events ORDER BY seq").fetchall()
    for seq, at, run_id, kind, payload in rows:
        canonical = hashing.canonical(json.loads(payload))
        digest = hashing.chain(prev, hashing.record_digest(at, run_id, kind, canonical))
        db.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest


def _newest_run(db: sqlite3.Connection) -> str:
    row = db.execute("SELECT id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
    return str(row[0])


# -- a cut-off tail ----------------------------------------------------------


def test_a_cut_off_tail_is_caught_by_a_checkpoint_kept_elsewhere(project: Project) -> None:
    _run(project, times=3)
    kept = _keep_checkpoint(project)
    db = _db(project)
    newest = _newest_run(db)
    db.execute(
        "DELETE FROM events WHERE run_id = ? OR seq > (SELECT min(seq) FROM events WHERE run_id = ?)",
        (newest, newest),
    )
    db.execute("DELETE FROM runs WHERE id = ?", (newest,))
    db.close()
    code, out, err = _verify(project)
    assert code == 0  # the chain's prefix is a valid chain: without a checkpoint, nothing shows
    assert "cannot show a cut-off tail" in err
    code, out, err = _verify(project, "--checkpoint", str(kept))
    assert code == 1
    assert "cut-off tail" in out


def test_a_cut_off_tail_followed_by_new_runs_leaves_a_gap(project: Project) -> None:
    _run(project, times=2)
    db = _db(project)
    newest = _newest_run(db)
    db.execute(
        "DELETE FROM events WHERE seq >= (SELECT min(seq) FROM events WHERE run_id = ?)", (newest,)
    )
    db.execute("DELETE FROM runs WHERE id = ?", (newest,))
    db.close()
    _run(project)  # the next event takes the next number the journal ever handed out
    code, out, _ = _verify(project)
    assert code == 1 and "are missing" in out


def test_no_cryptography_without_a_key(project: Project) -> None:
    script = (
        "import sys, runbook.cli\n"
        "sys.argv = ['runbook', 'run', 'playbooks/p.yaml']\n"
        "try:\n    runbook.cli.main()\nexcept SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "    assert 'cryptography' not in sys.modules\n"
        "    print('clean')\n"
    )
    project.playbook(BOOK)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("RUNBOOK_JOURNAL_KEY_FILE", None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip().endswith("clean"), done.stdout + done.stderr


def test_an_unsigned_checkpoint_says_what_it_proves(project: Project) -> None:
    _run(project)
    kept = _keep_checkpoint(project)
    data = json.loads(kept.read_text())
    assert data["signature"] is None and data["key_id"] is None
    assert data["count"] > 0 and len(data["head"]) == 64
    code, out, err = _verify(project, "--checkpoint", str(kept))
    assert code == 0, out
    assert "the checkpoint is unsigned" in err
    assert "carries no proof of who made it" in err


@pytest.mark.parametrize("how", ["drop", "delete"])
def test_wiping_every_table_is_caught(project: Project, how: str) -> None:
    _run(project, times=2)
    kept = _keep_checkpoint(project)
    db = _db(project)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        if table != "sqlite_sequence":
            db.execute(f"{'DROP TABLE' if how == 'drop' else 'DELETE FROM'} {table}")
    db.close()
    code, out, _ = _verify(project, "--checkpoint", str(kept))
    assert code == 1
    assert "the journal holds 0 event(s)" in out
    code, out, _ = _verify(project)  # even without the checkpoint, a wiped journal is not a new one
    assert code == 1
    assert ("table events is missing" if how == "drop" else "meta has no schema_version") in out


def test_a_deleted_journal_file_is_caught(project: Project) -> None:
    _run(project)
    kept = _keep_checkpoint(project)
    for path in (project.root / ".runbook").glob("journal.sqlite*"):
        path.unlink()
    code, out, err = _verify(project, "--checkpoint", str(kept))
    assert code == 1 and "cut-off tail" in out and "no journal at" in err


# -- a recomputed chain --------------------------------------------------------


def test_an_edit_with_recomputed_hashes_is_caught_by_the_signed_checkpoint(
    project: Project, key: Path
) -> None:
    _run(project, times=2)
    kept = _keep_checkpoint(project)
    assert json.loads(kept.read_text())["signature"]
    db = _db(project)
    # History rewritten: a step said ok now says failed, the run too, every
    # hash recomputed, and the signed checkpoints in the journal thrown away.
    seq = db.execute("SELECT seq FROM events WHERE kind = 'step.end' LIMIT 1").fetchone()[0]
    db.execute(
        'UPDATE events SET payload = replace(payload, \'"status":"ok"\', \'"status":"failed"\') WHERE seq = ?',
        (seq,),
    )
    db.execute("DELETE FROM events WHERE kind = 'checkpoint'")
    db.execute("DELETE FROM sqlite_sequence")
    _renumber(db)
    _recompute_chain(db)
    db.close()
    code, out, err = _verify(project)
    assert code == 0, out  # the chain is consistent again: only a checkpoint can tell
    assert "no checkpoint in the journal is signed by this key" in err  # …or their absence
    public = key.with_name(key.name + ".pub")
    code, out, err = _verify(project, "--checkpoint", str(kept), "--public-key", str(public))
    assert code == 1
    assert "differs from the checkpoint" in out or "cut-off tail" in out
    assert "the signature holds" in err


def _renumber(db: sqlite3.Connection) -> None:
    rows = db.execute("SELECT seq FROM events ORDER BY seq").fetchall()
    for new, (old,) in enumerate(rows, start=1):
        db.execute("UPDATE events SET seq = ? WHERE seq = ?", (new, old))


def test_an_edit_with_recomputed_hashes_is_caught_by_the_checkpoints_inside(
    project: Project, key: Path
) -> None:
    _run(project, times=2)
    db = _db(project)
    assert db.execute("SELECT count(*) FROM events WHERE kind = 'checkpoint'").fetchone()[0] == 2
    db.execute(
        'UPDATE events SET payload = replace(payload, \'"status":"ok"\', \'"status":"failed"\') WHERE kind = \'step.end\''
    )
    _recompute_chain(db)
    db.close()
    code, out, _ = _verify(project)
    assert code == 1 and "does not match the chain before it" in out


def test_a_forged_checkpoint_is_refused(project: Project, key: Path, tmp_path: Path) -> None:
    _run(project)
    kept = _keep_checkpoint(project)
    public = key.with_name(key.name + ".pub")
    data = json.loads(kept.read_text())
    # The head moved to another event: the signature no longer covers it.
    forged = {**data, "count": data["count"] - 1}
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    code, out, _ = _verify(
        project, "--checkpoint", str(tmp_path / "forged.json"), "--public-key", str(public)
    )
    assert code == 1 and "checkpoint refused: its signature does not verify" in out
    # Signed, but by a key of the forger's own.
    other = checkpoint.generate(tmp_path / "other.key")
    mine = other.sign(data["count"] - 1, "0" * 64, data["at"])
    (tmp_path / "mine.json").write_text(json.dumps(mine.serialize()))
    code, out, _ = _verify(
        project, "--checkpoint", str(tmp_path / "mine.json"), "--public-key", str(public)
    )
    assert code == 1 and "checkpoint refused: it names key" in out
    # Garbage where a signature should be.
    (tmp_path / "junk.json").write_text(json.dumps({**data, "signature": "%%%"}))
    code, out, _ = _verify(
        project, "--checkpoint", str(tmp_path / "junk.json"), "--public-key", str(public)
    )
    assert code == 1 and "checkpoint refused" in out


def test_a_checkpoint_file_that_is_not_one_is_invalid_input(project: Project) -> None:
    _run(project)
    for text in (
        "not json",
        "[]",
        '{"format": "x"}',
        '{"format": "runbook-journal-checkpoint/1", "count": "1"}',
    ):
        (project.root / "bad.json").write_text(text)
        code, _, err = _verify(project, "--checkpoint", str(project.root / "bad.json"))
        assert code == 2, err
        assert "bad.json" in err


# -- keys ------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_reads(project: Project, key: Path) -> None:
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "BEGIN PUBLIC KEY" in key.with_name(key.name + ".pub").read_text()
    again = project.run("journal", "keygen", "--out", str(key))
    assert again.exit_code == 2 and "not overwriting" in again.stderr
    key.chmod(0o644)
    result = project.run("run", str(project.playbook(BOOK)))
    assert result.exit_code == 2 and "readable by others" in result.stderr


def test_the_key_file_named_in_the_inventory_signs(project: Project, tmp_path: Path) -> None:
    keys = tmp_path.parent / f"{tmp_path.name}-inv-keys"
    assert project.run("journal", "keygen", "--out", str(keys / "k.pem")).exit_code == 0
    inventory = project.root / "inventory.yaml"
    inventory.write_text(inventory.read_text() + f"journal:\n  key_file: {keys / 'k.pem'}\n")
    assert project.run("validate").exit_code == 0
    _run(project)
    latest = project.run("journal", "checkpoint", "--latest")
    assert latest.exit_code == 0, latest.output
    assert json.loads(latest.stdout)["key_id"] == checkpoint.load_signer(keys / "k.pem").key_id


def test_a_signed_checkpoint_ends_every_run_and_verifies(project: Project, key: Path) -> None:
    _run(project, times=2)
    journal = Journal(project.root / ".runbook" / "journal.sqlite")
    kinds = [r["kind"] for r in journal.query("SELECT kind FROM events ORDER BY seq")]
    journal.close()
    assert kinds.count("checkpoint") == 2
    assert kinds[-2:] == ["run.end", "checkpoint"]
    code, out, _ = _verify(project)  # the configured key's public half checks them
    assert code == 0, out
    kept = _keep_checkpoint(project)
    again = _keep_checkpoint(project, "again.json")
    assert kept.read_text() == again.read_text()  # nothing new: the same checkpoint


def test_a_checkpoint_of_an_empty_journal(project: Project, key: Path) -> None:
    result = project.run("journal", "checkpoint")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["count"] == 0 and data["signature"]
    kept = project.root / "empty.json"
    kept.write_text(result.stdout)
    _run(project)
    assert _verify(project, "--checkpoint", str(kept))[0] == 0
    latest = project.run("journal", "checkpoint", "--latest")
    assert latest.exit_code == 0 and json.loads(latest.stdout)["count"] > 0


def test_a_checkpoint_every_so_many_events(
    project: Project, key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "EVERY", 3)
    journal = Journal(project.root / ".runbook" / "journal.sqlite", key)
    for i in range(10):  # a writer outside any run (a notifier, say), one event at a time
        row = {"id": f"r{i}", "playbook": "p", "mode": "check", "started_at": "now", "status": "ok"}
        journal.append(
            [("now", f"r{i}", "run.start", {"table": "runs", "op": "insert", "row": row})]
        )
    kinds = [r["kind"] for r in journal.query("SELECT kind FROM events ORDER BY seq")]
    journal.close()
    # Whenever a seq that is a multiple of EVERY is passed: never more than
    # EVERY events in a row without a signed checkpoint after them.
    assert kinds[3] == "checkpoint"
    assert (
        max(len(stretch) for stretch in ",".join(kinds).split("checkpoint"))
        <= len(",run.start") * 3 + 1
    )
    assert _verify(project)[0] == 0


# -- hash versions ----------------------------------------------------------------


def test_a_journal_hashed_the_old_way_still_verifies(project: Project) -> None:
    _run(project)
    db = _db(project)
    # As an older runbook wrote it: version 1 hashes, no hash_version in meta.
    prev = hashing.GENESIS
    rows = db.execute("SELECT seq, at, run_id, kind, payload FROM events ORDER BY seq").fetchall()
    for seq, at, run_id, kind, payload in rows:
        digest = hashing.hash_v1(prev, at, run_id, kind, payload)
        db.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
    db.execute("DELETE FROM meta WHERE key = 'hash_version'")
    db.close()
    assert _verify(project)[0] == 0
    _run(project)  # new events, hashed with version 2, after the old ones
    db = _db(project)
    (value,) = db.execute("SELECT value FROM meta WHERE key = 'hash_version'").fetchone()
    db.close()
    assert json.loads(value) == {"version": 2, "from_seq": len(rows) + 1}
    code, out, _ = _verify(project)
    assert code == 0, out


def test_the_hash_covers_the_canonical_record_not_the_stored_text(project: Project) -> None:
    _run(project)
    db = _db(project)
    # The same payload written with other spacing and key order still verifies…
    seq, payload = db.execute(
        "SELECT seq, payload FROM events WHERE kind = 'step.end' LIMIT 1"
    ).fetchone()
    reordered = json.dumps(dict(reversed(list(json.loads(payload).items()))), indent=1)
    db.execute("UPDATE events SET payload = ? WHERE seq = ?", (reordered, seq))
    db.close()
    code, out, _ = _verify(project)
    assert code == 0, out


def test_a_run_is_tied_to_a_checkpoint_by_the_other_events_digests_alone(
    project: Project, key: Path
) -> None:
    _run(project, times=3)
    kept = checkpoint.read(_keep_checkpoint(project))
    db = _db(project)
    rows = db.execute(
        "SELECT seq, at, run_id, kind, payload, prev_hash, hash FROM events ORDER BY seq"
    ).fetchall()
    middle = db.execute("SELECT id FROM runs ORDER BY started_at LIMIT 1 OFFSET 1").fetchone()[0]
    db.close()
    # An export of one run: its events whole, the others only by their digests.
    exported = [
        ("event", r)
        if r[2] == middle
        else (
            "digest",
            hashing.record_digest(r[1], r[2], r[3], hashing.canonical(json.loads(r[4]))),
        )
        for r in rows
        if r[0] <= kept.count
    ]
    head = hashing.GENESIS
    for what, item in exported:
        if what == "event":
            _, at, run_id, kind, payload, prev_hash, stored = item
            assert prev_hash == head  # the neighbour's hash
            digest = hashing.record_digest(at, run_id, kind, hashing.canonical(json.loads(payload)))
            assert hashing.chain(head, digest) == stored
        else:
            digest = item
        head = hashing.chain(head, digest)
    assert head == kept.head
    signer = checkpoint.load_signer(key)
    assert checkpoint.signature_problem(kept, signer.public) is None


# -- damage of every kind: problems, never a traceback ------------------------------

# The events table made again without its constraints, as a forger may.
_LOOSE = (
    "CREATE TABLE loose AS SELECT * FROM events; DROP TABLE events;"
    " ALTER TABLE loose RENAME TO events;"
)
_DAMAGE = {
    "payload not JSON": "UPDATE events SET payload = '{not json' WHERE seq = 3",
    "payload a JSON string": "UPDATE events SET payload = '\"x\"' WHERE seq = 3",
    "payload a list": "UPDATE events SET payload = '[1, 2]' WHERE seq = 2",
    "payload of no table": 'UPDATE events SET payload = \'{"table": "nope", "op": "insert", "row": {}}\' WHERE seq = 1',
    "payload without a row": 'UPDATE events SET payload = \'{"table": "runs", "op": "insert"}\' WHERE seq = 1',
    "payload with an unhashable key": 'UPDATE events SET payload = \'{"table": "runs", "op": "insert", "row": {"id": [1]}}\' WHERE seq = 1',
    "three corrupt payloads": "UPDATE events SET payload = substr(payload, 2) WHERE seq IN (1, 2, 3)",
    "deeply nested payload": "UPDATE events SET payload = '"
    + "[" * 5000
    + "]" * 5000
    + "' WHERE seq = 2",
    "payload a blob": "UPDATE events SET payload = x'00ff' WHERE seq = 2",
    "payload not UTF-8": "UPDATE events SET payload = CAST(x'7bff' AS TEXT) WHERE seq = 2",
    "run_id not UTF-8": "UPDATE events SET run_id = CAST(x'c3' AS TEXT) WHERE seq = 2",
    "runs column not UTF-8": "UPDATE runs SET playbook = CAST(x'ff' AS TEXT)",
    "meta not UTF-8": "UPDATE meta SET value = CAST(x'ff' AS TEXT) WHERE key = 'hash_version'",
    "incidents row not recorded": "INSERT INTO incidents (key, severity, status, opened_at, updated_at) VALUES ('k', 'x', 'open', 'now', 'now')",
    "attempts garbage": "INSERT INTO attempts VALUES (x'01', 1.5, 'now', 'x', 'y')",
    "payload NULL": _LOOSE + "UPDATE events SET payload = NULL WHERE seq = 2",
    "hash NULL": _LOOSE + "UPDATE events SET hash = NULL WHERE seq = 2",
    "prev_hash NULL": _LOOSE + "UPDATE events SET prev_hash = NULL WHERE seq = 2",
    "hash an integer": "UPDATE events SET hash = 7 WHERE seq = 2",
    "at a real": "UPDATE events SET at = 1.5 WHERE seq = 2",
    "kind NULL": _LOOSE + "UPDATE events SET kind = NULL WHERE seq = 2",
    "run_id a blob": "UPDATE events SET run_id = x'01' WHERE seq = 2",
    "events dropped": "DROP TABLE events",
    "runs dropped": "DROP TABLE runs",
    "meta dropped": "DROP TABLE meta",
    "incidents dropped": "DROP TABLE incidents",
    "deliveries dropped": "DROP TABLE deliveries",
    "attempts dropped": "DROP TABLE attempts",
    "events emptied": "DELETE FROM events",
    "events without a column": "ALTER TABLE events DROP COLUMN prev_hash",
    "runs status garbage": "UPDATE runs SET status = x'ff'",
    "runs counts NaN": "UPDATE runs SET counts = 'NaN'",
    "runs exit_code a real": "UPDATE runs SET exit_code = 1e400",
    "meta hash_version garbage": "UPDATE meta SET value = 'garbage' WHERE key = 'hash_version'",
    "a gap in seqs": "DELETE FROM events WHERE seq = 2",
    "a checkpoint event forged": 'UPDATE events SET payload = \'{"table": "checkpoints", "op": "insert", "row": {"count": "x"}}\' WHERE seq = 3',
}


@pytest.mark.parametrize("damage", list(_DAMAGE))
def test_damage_is_a_problem_never_a_traceback(project: Project, damage: str) -> None:
    _run(project, times=2)
    kept = _keep_checkpoint(project)
    db = _db(project)
    db.executescript(_DAMAGE[damage])
    db.close()
    for args in ((), ("--checkpoint", str(kept))):
        result = project.run("journal", "verify", *args)  # in-process: a traceback would raise
        assert result.exit_code == 1, (damage, result.output)
        assert result.stdout.strip(), damage
        assert "Traceback" not in result.output


def test_a_file_that_is_not_a_journal_is_a_problem(project: Project) -> None:
    _run(project)
    path = project.root / ".runbook" / "journal.sqlite"
    for wal in (project.root / ".runbook").glob("journal.sqlite-*"):
        wal.unlink()
    path.write_bytes(b"this is not a database" * 100)
    code, out, _ = _verify(project)
    assert code == 1 and "cannot" in out


# -- runs writing while verify reads ----------------------------------------------


def test_verify_sees_no_phantom_problems_while_eight_runs_write(project: Project) -> None:
    steps = "".join(f"  - {{name: S{i}, query: SELECT pg_sleep(0.005)}}\n" for i in range(25))
    book = project.playbook(f"name: busy\nkind: check\nsteps:\n{steps}")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "runbook.cli", "run", str(book), "-q"],
            cwd=project.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(8)
    ]
    checked = 0
    try:
        while any(r.poll() is None for r in runs) or checked < 3:
            code, out, _ = _verify(project)
            assert code == 0, out
            checked += 1
    finally:
        for r in runs:
            r.wait(timeout=120)
    assert [r.returncode for r in runs] == [0] * 8, [r.stderr.read() for r in runs if r.stderr]
    code, out, _ = _verify(project)
    assert code == 0, out


# -- an export of a few runs ---------------------------------------------------------


def _export_setup(project: Project, key: Path) -> tuple[Path, Path, Path]:
    _run(project, times=3)
    kept = _keep_checkpoint(project)
    db = _db(project)
    middle = db.execute("SELECT id FROM runs ORDER BY started_at LIMIT 1 OFFSET 1").fetchone()[0]
    db.close()
    result = project.run("journal", "export", middle, "--checkpoint", str(kept))
    assert result.exit_code == 0, result.output
    exported = project.root / "export.json"
    exported.write_text(result.stdout)
    return kept, exported, key.with_name(key.name + ".pub")


def test_an_export_of_one_run_verifies_against_the_checkpoint_alone(
    project: Project, key: Path, tmp_path: Path
) -> None:
    kept, exported, public = _export_setup(project, key)
    doc = json.loads(exported.read_text())
    assert len(doc["runs"]) == 1
    whole = [e for e in doc["events"] if "payload" in e]
    assert whole and all(e["run_id"] == doc["runs"][0] for e in whole)
    assert all(set(e) == {"seq", "digest"} for e in doc["events"] if "payload" not in e)
    # Another machine, no journal: only the export, the checkpoint and the public key.
    for path in (project.root / ".runbook").glob("journal.sqlite*"):
        path.unlink()
    args = ("--export", str(exported), "--checkpoint", str(kept), "--public-key", str(public))
    code, out, err = _verify(project, *args)
    assert code == 0, out
    assert "the signature holds" in err
    # Re-encoded by another JSON writer: still the same records.
    exported.write_text(json.dumps(doc, indent=4, sort_keys=True, ensure_ascii=False))
    assert _verify(project, *args)[0] == 0


def _deep_dump(doc: dict[str, Any]) -> str:
    """json.dumps would recurse too deep itself: the deep part written by hand."""
    whole = next(e for e in doc["events"] if "payload" in e)
    whole["payload"] = "DEEP"
    return json.dumps(doc).replace('"DEEP"', "[" * 3000 + "]" * 3000)


def _tamper(doc: dict[str, Any], how: str) -> None:
    whole = [e for e in doc["events"] if "payload" in e]
    if how == "a step's status":
        for event in whole:
            row = event["payload"]["row"]
            if row.get("status") == "ok":
                row["status"] = "failed"
                return
    elif how == "a digest":
        digest = next(e for e in doc["events"] if "digest" in e)
        digest["digest"] = "0" * 64
    elif how == "an event dropped":
        doc["events"].remove(whole[-1])
    elif how == "an event added":
        doc["events"].append({"seq": doc["events"][-1]["seq"] + 1, "digest": "1" * 64})
    elif how == "the prev hash":
        doc["prev"] = "f" * 64
    elif how == "garbage events":
        doc["events"] = [{"seq": "x"}, 7, None]
    elif how == "no events":
        doc["events"] = "none"
    elif how == "wrong format":
        doc["format"] = "x"
    elif how == "a deep payload":
        pass  # written by _deep_dump


@pytest.mark.parametrize(
    "how",
    [
        "a step's status",
        "a digest",
        "an event dropped",
        "an event added",
        "the prev hash",
        "garbage events",
        "no events",
        "wrong format",
        "a deep payload",
    ],
)
def test_a_tampered_export_is_caught(project: Project, key: Path, how: str) -> None:
    kept, exported, public = _export_setup(project, key)
    doc = json.loads(exported.read_text())
    _tamper(doc, how)
    exported.write_text(json.dumps(doc) if how != "a deep payload" else _deep_dump(doc))
    code, out, err = _verify(
        project, "--export", str(exported), "--checkpoint", str(kept), "--public-key", str(public)
    )
    if how == "a deep payload":  # too deep to read: invalid input, said plainly
        assert code == 2 and "cannot read" in err, err
        return
    assert code == 1 and out.strip(), (how, out)
