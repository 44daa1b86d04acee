"""`export:` on a query step: every row into a file of the project.

`export: {path: "reports/audit-{{ run.date }}.csv", format: csv}` writes all
the rows the query returns — streamed from the server as they come, not the
journal's sample nor the in-memory cap — to a path inside the project
(symlinks resolved), through a temporary file renamed into place, so a
failure leaves no half-written report. The step's result, its output line and
the journal name the file, its row count and its sha256.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

from runbook import tables
from runbook.errors import StepError
from runbook.results import to_json

FORMATS = ("csv", "markdown", "json", "jsonl")
_SUFFIXES = {".csv": "csv", ".md": "markdown", ".json": "json", ".jsonl": "jsonl"}


def format_of(path: str, given: str | None) -> str:
    if given:
        return given
    return _SUFFIXES.get(Path(path).suffix.lower(), "csv")


def target(root: Path, written: str) -> Path:
    """Where `written` leads inside the project; refused outside it."""
    if "\0" in written or not written.strip():
        raise StepError(f"export path {written!r} is not a file name")
    where = (root / written).resolve()
    if not where.is_relative_to(root.resolve()) or where == root.resolve():
        raise StepError(f"export path {written!r} leads outside the project ({root})")
    return where


def _text(value: Any) -> str:
    """A value in a CSV or Markdown cell: as shown elsewhere, NULL empty."""
    return tables.text(to_json(value), null="")


class Export:
    """A file being written row by row; `finish` renames it into place."""

    def __init__(self, where: Path, fmt: str) -> None:
        self.where = where
        self.fmt = fmt
        self.rows = 0
        self.columns: list[str] = []
        where.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{where.name}.", dir=where.parent)
        self.temp = Path(name)
        # Open across calls (begin, write, finish): closed by finish or abandon.
        self.out: IO[str] = open(fd, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self.csv = csv.writer(self.out) if fmt == "csv" else None

    def begin(self, columns: list[str]) -> None:
        """A result set starts; a later one replaces an earlier (the last one counts)."""
        self.out.seek(0)
        self.out.truncate()
        self.columns, self.rows = columns, 0
        if not columns:
            return  # no rows came, and with them no column names: an empty report
        if self.csv is not None:
            self.csv.writerow(columns)
        elif self.fmt == "markdown":
            self.out.write("| " + " | ".join(_md(c) for c in columns) + " |\n")
            self.out.write("|" + "---|" * len(columns) + "\n")
        elif self.fmt == "json":
            self.out.write("[")

    def write(self, row: tuple[Any, ...]) -> None:
        if self.csv is not None:
            self.csv.writerow([_text(v) for v in row])
        elif self.fmt == "markdown":
            self.out.write("| " + " | ".join(_md(_text(v)) for v in row) + " |\n")
        else:
            record = json.dumps(
                {c: to_json(v) for c, v in zip(self.columns, row, strict=True)},
                ensure_ascii=False,
            )
            sep = ("\n" if self.rows == 0 else ",\n") if self.fmt == "json" else ""
            self.out.write(sep + record + ("\n" if self.fmt == "jsonl" else ""))
        self.rows += 1

    def finish(self) -> dict[str, Any]:
        if self.fmt == "json":
            if not self.columns:
                self.out.write("[")
            self.out.write("\n]\n" if self.rows else "]\n")
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()
        digest = hashlib.sha256(self.temp.read_bytes()).hexdigest()
        os.replace(self.temp, self.where)
        return {"path": str(self.where), "format": self.fmt, "rows": self.rows, "sha256": digest}

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            self.out.close()
        with contextlib.suppress(OSError):
            self.temp.unlink()


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
