"""The PostgreSQL journal's append: its statements over many rows at once,
the order it locks chains in, the heads it may take as known.

A fleet's batch holds the records of a hundred runs. Sent row by row
(executemany) or as arrays, each value takes a turn of Python in psycopg
(its array dumper escapes element by element); in one statement over many
rows, with $n placeholders for a raw cursor, the values are scalars that
psycopg adapts in C and the text needs no conversion. The writer is one
thread among a fleet's hundred: its CPU is theirs. A statement's text is
made once per row count, and counts are powers of two up to
ROWS_A_STATEMENT: callers send rows in parts (runbook.journal.events.in_parts),
so that a few texts serve every batch, each prepared by the server once.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping

import psycopg

from runbook.journal.events import GENESIS, Prepared

JOURNAL_WIDE = ""  # the stream of everything that is not one run's own
ROWS_A_STATEMENT = 64  # rows in one statement at most (in_parts: 1, 2, 4 … 64)


def _numbered(row: str, width: int, count: int, first: int) -> str:
    """`count` rows shaped like `row`, numbered from $first on, `width` a row."""
    return ", ".join(
        row.format(*range(first + i * width, first + (i + 1) * width)) for i in range(count)
    )


def _column(width: int, count: int, first: int, column: int) -> str:
    """One column of `count` rows of `width` values numbered from $first, as an array."""
    return "ARRAY[" + ", ".join(f"${first + i * width + column}" for i in range(count)) + "]"


@functools.cache  # one text per count (a power of two <= ROWS_A_STATEMENT)
def insert_events(count: int) -> bytes:
    """Rows of (stream, pos, at, run_id, kind, payload, prev_hash, hash)."""
    assert 0 < count <= ROWS_A_STATEMENT
    return (
        "INSERT INTO events (stream, pos, at, run_id, kind, payload, prev_hash, hash) VALUES "
        + _numbered("(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})", 8, count, 1)
    ).encode()


@functools.cache
def upsert_chains(count: int) -> bytes:
    """Rows of (stream, length, head): each chain's new head, its row made if
    the chain is new (a run's first append needs no lock statement before)."""
    assert 0 < count <= ROWS_A_STATEMENT
    return (
        "INSERT INTO chains (stream, length, head) VALUES "
        + _numbered("(${}, ${}, ${})", 3, count, 1)
        + " ON CONFLICT (stream) DO UPDATE SET length = EXCLUDED.length, head = EXCLUDED.head"
    ).encode()


@functools.cache
def lock_chains(count: int) -> bytes:
    """$1 the genesis head, $2 the journal-wide stream, then `count` streams:
    their chains made if new and locked, the journal-wide one last (where
    extend_chain takes it), the others in order; their lengths and heads back."""
    assert 0 < count <= ROWS_A_STATEMENT
    return (
        "INSERT INTO chains (stream, length, head)"
        " SELECT stream, 0, $1 FROM unnest(" + _column(1, count, 3, 0) + "::text[]) AS s (stream)"
        ' ORDER BY stream = $2, stream COLLATE "C"'
        " ON CONFLICT (stream) DO UPDATE SET length = chains.length"
        " RETURNING stream, length, head"
    ).encode()


@functools.cache
def extend_chain(count: int) -> bytes:
    """$1 the stream, then `count` rows of (at, run_id, kind, payload, digest):
    extend_chain (sql/journal/007_extend_chain.sql) over them."""
    assert 0 < count <= ROWS_A_STATEMENT
    columns = ", ".join(_column(5, count, 2, c) + "::text[]" for c in range(5))
    return f"SELECT extend_chain($1, {columns})".encode()


# Heads kept for the next append (runs not yet sealed); past this, forgotten.
HEADS_KEPT = 10_000
_EVENTS_POSITION = "events_stream_pos_key"


def lock_order(streams: Collection[str]) -> list[str]:
    """Byte order, the journal-wide chain last (where extend_chain takes it):
    every append locks chains in this order, so two cannot deadlock."""
    return sorted(streams, key=lambda stream: (stream == JOURNAL_WIDE, stream))


def known_heads(
    events: list[Prepared], streams: Collection[str], known: Mapping[str, tuple[int, str]]
) -> dict[str, tuple[int, str]]:
    """The heads of `streams` that need not be read: those `known`, and those
    of runs this append starts (a new chain)."""
    heads = {stream: known[stream] for stream in streams if stream in known}
    for _, run_id, _, change, _ in events:
        if (
            change["table"] == "runs"
            and change["op"] == "insert"
            and run_id is not None
            and run_id in streams
            and change["row"].get("id") == run_id
        ):
            heads.setdefault(run_id, (0, GENESIS))
    return heads


def stale(exc: BaseException) -> bool:
    """Whether an append failed on the events' (stream, pos) key: a head it
    took as known had moved."""
    return (
        isinstance(exc, psycopg.errors.UniqueViolation)
        and exc.diag.constraint_name == _EVENTS_POSITION
    )
