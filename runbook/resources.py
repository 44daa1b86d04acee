"""Where the files runbook ships (schemas, SQL) are, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    # A wheel carries them under runbook/_data/; a checkout (or an editable
    # install) has them at the top of the repository.
    installed = _PACKAGE / "_data" / name
    return installed if installed.is_dir() else _PACKAGE.parent / name


def schemas_dir() -> Path:
    return _shipped("schemas")


def sql_dir() -> Path:
    return _shipped("sql")
