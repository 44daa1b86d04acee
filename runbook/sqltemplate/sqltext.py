"""A small PostgreSQL lexer: where strings, quoted identifiers, dollar-quoted
bodies and comments are, and where one statement ends and the next begins.

It is not a parser; it knows exactly enough to split `a; b` without splitting
inside `'a;b'`, `$$ … ; … $$` or `-- ;`, and to tell whether a template
placeholder landed inside a quoted region (where a bound parameter cannot go).
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

# Any non-ASCII character may be part of an identifier, as in PostgreSQL's
# scanner. Written as a negated ASCII class: a range up to \uffff costs the
# regex compiler some 5 ms per pattern at import, on every CLI start.
_TAG = re.compile(r"\$((?:[A-Za-z_]|[^\x00-\x7f])(?:[A-Za-z0-9_]|[^\x00-\x7f])*)?\$")
_IDENT_CHAR = re.compile(r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]")
_SEMICOLON = re.compile(";")
_OPENERS = re.compile(r"['\"$]|--|/\*")
# PostgreSQL's {quotecontinue}: two string constants separated by whitespace
# holding a newline (and perhaps `--` comments) are one constant, read in the
# first one's way: E'a' <newline> '\'' continues an E-string, backslashes and
# all. (Character by character: no nested repetition to backtrack through.)
_CONTINUES = re.compile(r"(?:[ \t\f\v]|--[^\n\r]*)*[\n\r](?:[ \t\n\r\f\v]|--[^\n\r]*[\n\r])*'")
_NUMBER_OR_PARAM = re.compile(r"\$?[0-9]")


@dataclass(frozen=True)
class Region:
    """A span of SQL text that is not plain code."""

    start: int
    end: int
    kind: str  # "string", "identifier", "dollar", "comment"


@functools.lru_cache(maxsize=64)
def regions(sql: str, backslashes: bool = False) -> tuple[Region, ...]:
    """Every quoted or commented span, in order (kept for the last few texts:
    a statement's fragments are each checked against the same spans).

    `backslashes`: read as a session with standard_conforming_strings off
    would, a backslash escaping in every plain string too ('a\' goes on),
    not only in E'…' (a bit string, B'…' or X'…', never)."""
    out: list[Region] = []
    i = 0
    n = len(sql)
    while i < n:
        # Jump to the next character that can open a region.
        found = _OPENERS.search(sql, i)
        if found is None:
            break
        i = found.start()
        c = sql[i]
        if c == "'":
            escapes = _escapes(sql, i, backslashes)
            end = _string_end(sql, i + 1, escapes)
            while end < n and (more := _CONTINUES.match(sql, end)) is not None:
                end = _string_end(sql, more.end(), escapes)  # the same constant, read alike
            out.append(Region(i, end, "string"))
            i = end
        elif c == '"':
            end = _quoted_end(sql, i + 1, '"')
            out.append(Region(i, end, "identifier"))
            i = end
        elif c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end + 1
            out.append(Region(i, end, "comment"))
            i = end
        elif c == "/" and sql.startswith("/*", i):
            end = _block_comment_end(sql, i + 2)
            out.append(Region(i, end, "comment"))
            i = end
        elif c == "$" and _opens_dollar(sql, i, out[-1].end if out else 0):
            match = _TAG.match(sql, i)
            if match:
                tag = match.group(0)
                close = sql.find(tag, match.end())
                end = n if close < 0 else close + len(tag)
                out.append(Region(i, end, "dollar"))
                i = end
            else:
                i += 1
        else:
            i += 1
    return tuple(out)


def _escapes(sql: str, i: int, backslashes: bool) -> bool:
    """Whether a backslash escapes in the string whose quote is at `i`."""
    prefix = sql[i - 1] if i > 0 else ""
    alone = i < 2 or not _IDENT_CHAR.match(sql[i - 2])  # E'…', not name'…'
    if prefix in ("e", "E") and alone:
        return True
    if prefix in ("b", "B", "x", "X") and alone:
        return False  # bit strings read no escapes, whatever the setting
    return backslashes


def _opens_dollar(sql: str, i: int, floor: int) -> bool:
    """Whether a `$` at `i` may open a dollar quote: not inside a word (`a$b`
    is one identifier), but after a number or a parameter (`1$a$`, `$1$a$`:
    PostgreSQL reads the number, then the quote), or right after a string,
    body or comment (`$a$x$a$$b$`), which ends at `floor`."""
    start = i
    while start > floor and _IDENT_CHAR.match(sql[start - 1]):
        start -= 1
    return start == i or _NUMBER_OR_PARAM.match(sql, start) is not None


_QUOTE_OR_BACKSLASH = re.compile(r"['\\]")
_QUOTE = re.compile("'")


def _string_end(sql: str, i: int, backslash_escapes: bool) -> int:
    pattern = _QUOTE_OR_BACKSLASH if backslash_escapes else _QUOTE
    n = len(sql)
    while True:
        found = pattern.search(sql, i)
        if found is None:
            return n
        i = found.start()
        if sql[i] == "\\":
            i += 2
            continue
        if i + 1 < n and sql[i + 1] == "'":
            i += 2
            continue
        return i + 1


def _quoted_end(sql: str, i: int, quote: str) -> int:
    n = len(sql)
    while True:
        i = sql.find(quote, i)
        if i < 0:
            return n
        if i + 1 < n and sql[i + 1] == quote:
            i += 2
            continue
        return i + 1


_COMMENT_MARK = re.compile(r"/\*|\*/")


def _block_comment_end(sql: str, i: int) -> int:
    """End of a (nestable) block comment whose opening ends before `i`."""
    depth = 1
    for mark in _COMMENT_MARK.finditer(sql, i):
        depth += 1 if mark.group() == "/*" else -1
        if depth == 0:
            return mark.end()
    return len(sql)


def dollar_tag(sql: str, start: int) -> str:
    """The opening tag (`$$`, `$body$`) of the dollar-quoted body at `start`."""
    match = _TAG.match(sql, start)
    return match.group(0) if match else "$"


def region_at(spans: Sequence[Region], index: int) -> Region | None:
    """The quoted or commented region containing `index`, if any."""
    found = first_ending_after(spans, index)
    if found < len(spans) and spans[found].start <= index:
        return spans[found]
    return None


def first_ending_after(spans: Sequence[Region], index: int) -> int:
    """The position in `spans` (in order, apart) of the first region ending
    after `index`: found by bisection, not by walking from the first (a
    statement with thousands of outputs looked each up from the start)."""
    return bisect.bisect_right(spans, index, key=lambda span: span.end)


def split(sql: str, spans: Sequence[Region] | None = None) -> list[str]:
    """Statements of `sql`, split at top-level semicolons; blank ones dropped.

    `spans` are `regions(sql)` if the caller has them already.
    """
    if spans is None:
        spans = regions(sql)
    if ";" not in sql:
        return [sql.strip()] if _has_code(sql, spans, 0, len(sql)) else []
    cuts = []
    j = 0
    for match in _SEMICOLON.finditer(sql):
        i = match.start()
        while j < len(spans) and spans[j].end <= i:
            j += 1
        if j < len(spans) and spans[j].start <= i < spans[j].end:
            continue
        cuts.append(i)
    out = []
    start = 0
    for cut in [*cuts, len(sql)]:
        if _has_code(sql, spans, start, cut):
            out.append(sql[start:cut].strip())
        start = cut + 1
    return out


def _has_code(sql: str, spans: Sequence[Region], start: int, end: int) -> bool:
    """Whether sql[start:end] holds anything but blanks and comments."""
    position = start
    for k in range(first_ending_after(spans, start), len(spans)):
        span = spans[k]
        if span.start >= end:
            break
        if span.kind != "comment":
            continue
        if sql[position : max(position, span.start)].strip():
            return True
        position = max(position, span.end)
    return bool(sql[position:end].strip())


def strip_comments(sql: str) -> str:
    """`sql` with comments removed (strings and bodies kept)."""
    out = []
    last = 0
    for span in regions(sql):
        if span.kind == "comment":
            out.append(sql[last : span.start])
            out.append(" ")
            last = span.end
    out.append(sql[last:])
    return "".join(out)


_NO_TRANSACTION = re.compile(
    r"^\s*(VACUUM\b|CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY\b|DROP\s+INDEX\s+CONCURRENTLY\b"
    r"|REINDEX\b.*\bCONCURRENTLY\b|ALTER\s+SYSTEM\b|CREATE\s+DATABASE\b|DROP\s+DATABASE\b"
    r"|CREATE\s+TABLESPACE\b|DROP\s+TABLESPACE\b|CLUSTER\s*;?\s*$"
    r")",
    re.IGNORECASE | re.DOTALL,
)


_NO_TRANSACTION_WORDS = re.compile(
    r"VACUUM|CONCURRENTLY|SYSTEM|DATABASE|TABLESPACE|CLUSTER", re.IGNORECASE
)


def needs_autocommit(sql: str) -> str | None:
    """The first statement that PostgreSQL refuses inside a transaction block, if any."""
    if not _NO_TRANSACTION_WORDS.search(sql):
        return None  # the common case, without lexing
    for statement in split(sql):
        code = strip_comments(statement).strip()
        if _NO_TRANSACTION.match(code):
            return " ".join(code.split())[:60]
    return None


_READ_ONLY_START = re.compile(
    r"^\s*(\(\s*)*(SELECT|WITH|VALUES|TABLE|SHOW|EXPLAIN)\b", re.IGNORECASE
)


def looks_read_only(sql: str) -> bool:
    """Every statement starts like a read (a hint only: functions may still write)."""
    return all(_READ_ONLY_START.match(strip_comments(s)) for s in split(sql))


# Statements that would end a read-only transaction or turn read-only off.
_READ_ONLY_ESCAPE = re.compile(
    r"^\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|PREPARE\s+TRANSACTION"
    r"|SET\s+(SESSION\s+CHARACTERISTICS|TRANSACTION)|RESET\s+ALL)\b",
    re.IGNORECASE,
)
_READ_ONLY_SETTING = re.compile(r"\b(default_)?transaction_read_only\b", re.IGNORECASE)
_ESCAPE_WORDS = re.compile(
    r"BEGIN|START|COMMIT|END|ROLLBACK|ABORT|PREPARE|TRANSACTION|RESET|READ_ONLY", re.IGNORECASE
)


def escapes_read_only(sql: str) -> str | None:
    """The first statement that would take SQL out of a read-only transaction, if any.

    A kind: check playbook runs read-only; a statement that ends the transaction
    (COMMIT, BEGIN READ WRITE …) or turns the setting off (wherever its name
    appears, even in a DO body or set_config) would let what follows write.
    """
    if not _ESCAPE_WORDS.search(sql):
        return None  # the common case, without lexing
    setting = _READ_ONLY_SETTING.search(sql)
    for statement in split(sql):
        code = strip_comments(statement).strip()
        if _READ_ONLY_ESCAPE.match(code) or (setting and _READ_ONLY_SETTING.search(code)):
            return " ".join(code.split())[:60]
    return None


# Statements that end or start a transaction (not savepoints, which stay inside it).
_TRANSACTION_CONTROL = re.compile(
    r"^\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK(?!\s+(WORK\s+|TRANSACTION\s+)?TO\b)"
    r"|ABORT|PREPARE\s+TRANSACTION)\b",
    re.IGNORECASE,
)


def controls_transaction(sql: str) -> str | None:
    """The first statement that would end (or begin) the transaction the step runs
    in, if any: a writing step's transaction carries its exactly-once marker, and
    a COMMIT inside the step would commit half of it with the marker."""
    if not _ESCAPE_WORDS.search(sql):
        return None
    for statement in split(sql):
        code = strip_comments(statement).strip()
        if _TRANSACTION_CONTROL.match(code):
            return " ".join(code.split())[:60]
    return None
