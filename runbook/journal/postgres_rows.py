"""The PostgreSQL journal's append statements over many rows at once.

A fleet's batch holds the records of a hundred runs. Sent row by row
(executemany) or as arrays, each value takes a turn of Python in psycopg
(its array dumper escapes element by element); in one statement over many
rows, with $n placeholders for a raw cursor, the values are scalars that
psycopg adapts in C and the text needs no conversion. The writer is one
thread among a fleet's hundred: its CPU is theirs. A statement's text is
made once per row count, and counts are at most ROWS_A_STATEMENT: callers
send more rows in several statements (runbook.journal.events.in_parts).
"""

from __future__ import annotations

import functools

ROWS_A_STATEMENT = 100


def _numbered(row: str, width: int, count: int, first: int) -> str:
    """`count` rows shaped like `row`, numbered from $first on, `width` a row."""
    return ", ".join(
        row.format(*range(first + i * width, first + (i + 1) * width)) for i in range(count)
    )


def _column(width: int, count: int, first: int, column: int) -> str:
    """One column of `count` rows of `width` values numbered from $first, as an array."""
    return "ARRAY[" + ", ".join(f"${first + i * width + column}" for i in range(count)) + "]"


@functools.cache  # one text per count (<= ROWS_A_STATEMENT)
def insert_events(count: int) -> bytes:
    """Rows of (stream, pos, at, run_id, kind, payload, prev_hash, hash)."""
    assert 0 < count <= ROWS_A_STATEMENT
    return (
        "INSERT INTO events (stream, pos, at, run_id, kind, payload, prev_hash, hash) VALUES "
        + _numbered("(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})", 8, count, 1)
    ).encode()


@functools.cache
def update_chains(count: int) -> bytes:
    """Rows of (stream, length, head): each chain's new head."""
    assert 0 < count <= ROWS_A_STATEMENT
    return (
        "UPDATE chains AS c SET length = v.length, head = v.head FROM (VALUES "
        + _numbered("(${}::text, ${}::bigint, ${}::text)", 3, count, 1)
        + ") AS v (stream, length, head) WHERE c.stream = v.stream"
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
