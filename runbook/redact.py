"""Secrets never reach output or the journal.

The set of secret values is known when a run starts (DSN passwords, variables
listed under `secrets:`, `{from_env: …}` values not marked `secret: false`). The
redactor replaces them wherever they appear in what is shown or recorded: bound
parameters, rendered SQL, rows, errors, notices, command output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "***"
# Shorter secrets are masked only where a whole value equals them: masking
# every "a" in every text would make output useless and reveal nothing safer.
_MIN_SUBSTRING = 4


class Redactor:
    def __init__(self, secrets: Iterable[Any] = ()) -> None:
        self._exact: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[Any]) -> None:
        known = len(self._exact)
        for secret in secrets:
            if secret is None:
                continue
            text = str(secret)
            if text:
                self._exact.add(text)
        if len(self._exact) == known:
            return  # nothing new: the pattern stands (this runs after every step)
        long = sorted((s for s in self._exact if len(s) >= _MIN_SUBSTRING), key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in long)) if long else None

    def __bool__(self) -> bool:
        return bool(self._exact)

    def text(self, value: str) -> str:
        if not self._exact:
            return value
        if value in self._exact:
            return MASK
        if self._pattern is not None:
            return self._pattern.sub(MASK, value)
        return value

    def value(self, value: Any) -> Any:
        """Redact inside any JSON-like value."""
        if not self._exact:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if value is not None and not isinstance(value, bool) and str(value) in self._exact:
            return MASK
        return value


def dsn_password(dsn: str) -> str | None:
    """The password inside a libpq DSN or URI, if any."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(dsn)
    except Exception:
        match = re.search(r"://[^:/@]*:([^@]*)@", dsn) or re.search(r"password\s*=\s*(\S+)", dsn)
        return match.group(1) if match else None
    password = params.get("password")
    return str(password) if password else None


def redact_dsn(dsn: str) -> str:
    """A DSN fit to show: the password replaced by ***."""
    password = dsn_password(dsn)
    if not password:
        return dsn
    from urllib.parse import quote

    return dsn.replace(quote(password, safe=""), MASK).replace(password, MASK)
