"""PostgreSQL client programs (pg_dump, psql, vacuumdb …) suited to a target's server.

A pg_dump older than the server refuses to dump it; a newer one writes what an
older server refuses (pg_dump 17 and later start a dump with `SET
transaction_timeout`, which 15 rejects). So each target gets the client
programs of its server's major version: the target's `pg_bin` if the inventory
sets one; else a matching version found on this machine (`PATH`, `pg_config
--bindir`, Debian's per-major folders /usr/lib/postgresql/<major>/bin, which
`pg_lsclusters` and `pg_config` name); else the nearest newer one; else the
newest there is, the embedded server's included. A choice that is not an
exact match carries a note saying what the mismatch means.

A Finder looks once (a few `pg_dump --version` calls) and is kept for one run:
programs installed while a scheduler runs are seen by its next run.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.errors import RunbookError, StepError

# The programs that talk to a server and whose version matters.
CLIENT_PROGRAMS = frozenset(
    {
        "clusterdb",
        "createdb",
        "createuser",
        "dropdb",
        "dropuser",
        "pg_amcheck",
        "pg_basebackup",
        "pg_dump",
        "pg_dumpall",
        "pg_isready",
        "pg_receivewal",
        "pg_recvlogical",
        "pg_restore",
        "pg_verifybackup",
        "pgbench",
        "psql",
        "reindexdb",
        "vacuumdb",
        "vacuumlo",
    }
)
_MENTION = re.compile(
    r"(?<![\w.-])(" + "|".join(sorted(CLIENT_PROGRAMS, key=len, reverse=True)) + r")(?![\w.-])"
)
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
DEBIAN_ROOT = Path("/usr/lib/postgresql")
# Debian's /usr/bin/pg_dump is this script, which picks a version of its own.
_WRAPPER = "pg_wrapper"
# Where an exact match is looked for first.
_PREFERENCE = ("pg_bin", "PATH", "pg_config", "Debian", "embedded")


class ToolsError(StepError):
    """The target's `pg_bin` holds no usable client programs."""


def mentions_client(text: str) -> bool:
    """Whether a command's source names a PostgreSQL client program."""
    return _MENTION.search(text) is not None


@dataclass(frozen=True)
class Install:
    """One folder of client programs and the version its pg_dump (or psql) reports."""

    bin_dir: Path
    version: str  # "15.18"
    major: int
    source: str  # pg_bin | PATH | pg_config | Debian | embedded


@dataclass(frozen=True)
class Choice:
    """The client programs a target's shell steps get, and why."""

    install: Install | None
    server_major: int | None
    note: str = ""

    def describe(self) -> str:
        if self.install is None:
            return "no PostgreSQL client programs found"
        i = self.install
        return f"PostgreSQL {i.version} client programs from {i.bin_dir} ({i.source})"

    def record(self) -> dict[str, Any]:
        """What the journal keeps of the choice."""
        i = self.install
        return {
            "bin": str(i.bin_dir) if i else None,
            "version": i.version if i else None,
            "source": i.source if i else None,
            "server_major": self.server_major,
            "note": self.note or None,
        }


def read_version(bin_dir: Path) -> tuple[str, int] | None:
    """(version, major) of the programs in `bin_dir`, or None if there are none."""
    for program in ("pg_dump", "psql"):
        path = bin_dir / program
        if not (path.is_file() and os.access(path, os.X_OK)):
            continue
        try:
            proc = subprocess.run(
                [str(path), "--version"],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=10,
                check=False,
                env={**os.environ, "LC_ALL": "C"},
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        match = _VERSION.search(proc.stdout)
        if proc.returncode == 0 and match:
            major = int(match.group(1))
            minor = match.group(2)
            return (f"{major}.{minor}" if minor is not None else str(major)), major
    return None


@dataclass
class Finder:
    """Finds the client programs on this machine once, then chooses per server."""

    search_path: str = field(default_factory=lambda: os.environ.get("PATH", ""))
    embedded_bin: Callable[[], Path | None] = lambda: None
    debian_root: Path = DEBIAN_ROOT
    _installs: list[Install] | None = None
    _read: dict[Path, Install | None] = field(default_factory=dict)

    def installs(self) -> list[Install]:
        if self._installs is None:
            self._installs = self._discover()
        return self._installs

    def read(self, bin_dir: Path, source: str) -> Install | None:
        real = bin_dir.resolve()
        if real not in self._read:
            found = read_version(real)
            self._read[real] = Install(real, found[0], found[1], source) if found else None
        return self._read[real]

    def _discover(self) -> list[Install]:
        seen: set[Path] = set()
        found: list[Install] = []
        for bin_dir, source in self._candidates():
            install = self.read(bin_dir, source)
            if install is not None and install.bin_dir not in seen:
                seen.add(install.bin_dir)
                found.append(Install(install.bin_dir, install.version, install.major, source))
        return found

    def _candidates(self) -> Iterable[tuple[Path, str]]:
        for entry in self.search_path.split(os.pathsep):
            if not entry:
                continue
            program = Path(entry) / "pg_dump"
            if program.is_file() and program.resolve().name != _WRAPPER:
                yield Path(entry), "PATH"
        bindir = _pg_config_bindir(self.search_path)
        if bindir is not None:
            yield bindir, "pg_config"
        if self.debian_root.is_dir():
            majors = [p for p in self.debian_root.iterdir() if p.name.isdigit()]
            for folder in sorted(majors, key=lambda p: -int(p.name)):
                yield folder / "bin", "Debian"
        embedded = self.embedded_bin()
        if embedded is not None:
            yield embedded, "embedded"

    def choose(self, server_version: int | None, pg_bin: Path | None = None) -> Choice:
        """The programs for a server of `server_version` (server_version_num; None:
        unknown, as when the server cannot be reached)."""
        major = server_version // 10000 if server_version else None
        if pg_bin is not None:
            install = self.read(pg_bin, "pg_bin")
            if install is None:
                raise ToolsError(f"pg_bin {pg_bin} holds no pg_dump or psql that runs")
            return Choice(install, major, _mismatch(install, major, "pg_bin"))
        return choose(self.installs(), major)


def choose(installs: list[Install], major: int | None) -> Choice:
    """An exact major if any (by source preference), else the nearest newer,
    else the newest older; unknown server: the newest."""
    if not installs:
        return Choice(None, major, "no PostgreSQL client programs found on this machine")
    if major is None:
        newest = max(installs, key=lambda i: i.major)
        return Choice(
            newest,
            None,
            f"the server's version is unknown (not reachable): the newest client programs "
            f"({newest.version}) come first on PATH",
        )
    exact = [i for i in installs if i.major == major]
    if exact:
        return Choice(min(exact, key=lambda i: _PREFERENCE.index(i.source)), major)
    newer = [i for i in installs if i.major > major]
    pick = min(newer, key=lambda i: i.major) if newer else max(installs, key=lambda i: i.major)
    return Choice(pick, major, _mismatch(pick, major, "found"))


def _mismatch(install: Install, major: int | None, how: str) -> str:
    if major is None or install.major == major:
        return ""
    where = "set by pg_bin" if how == "pg_bin" else f"no PostgreSQL {major} client programs found"
    if install.major > major:
        return (
            f"{where}: using {install.version} (newer than the server's {major}); a dump it "
            f"writes may not restore into PostgreSQL {major} (install postgresql-client-{major} "
            f"or set the target's pg_bin)"
        )
    return (
        f"{where}: using {install.version} (older than the server's {major}); pg_dump refuses "
        f"to dump a newer server (install postgresql-client-{major} or set the target's pg_bin)"
    )


def _pg_config_bindir(search_path: str) -> Path | None:
    for entry in search_path.split(os.pathsep):
        program = Path(entry or ".") / "pg_config"
        if entry and program.is_file() and os.access(program, os.X_OK):
            try:
                proc = subprocess.run(
                    [str(program), "--bindir"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired):
                return None
            text = proc.stdout.strip()
            return Path(text) if proc.returncode == 0 and text else None
    return None


@dataclass
class TargetTools:
    """One target's choice within a run, made when a shell step first needs it."""

    finder: Finder
    pg_bin: Path | None = None
    _choice: Choice | None = None

    def choice(self, server_version: Callable[[], int]) -> Choice:
        """The choice for this target; `server_version` connects if need be. An
        unreachable server is asked again next time (the choice is not kept)."""
        if self._choice is not None:
            return self._choice
        try:
            version: int | None = server_version()
        except RunbookError:  # the target is down: a step may still need programs
            version = None
        choice = self.finder.choose(version, self.pg_bin)
        if version is not None:
            self._choice = choice
        return choice


def with_tools(env: dict[str, str], choice: Choice) -> dict[str, str]:
    """`env` with the chosen programs first on PATH and named in RUNBOOK_PG_BIN."""
    if choice.install is None:
        return env
    bin_dir = str(choice.install.bin_dir)
    return {
        **env,
        "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
        "RUNBOOK_PG_BIN": bin_dir,
    }
