"""What every action module declares: its template fields and whether it writes."""

from __future__ import annotations

from dataclasses import dataclass

from runbook.sqltemplate.template import Kind

ANY = "*"


@dataclass(frozen=True)
class Field:
    """A templated place inside a step, e.g. `("http", "headers", ANY)` (text).

    `names` are extra variables available there only (`result` in gates).
    A field whose value is a list of strings is checked element by element.
    """

    path: tuple[str, ...]
    kind: Kind
    names: frozenset[str] = frozenset()


RESULT = frozenset({"result"})
