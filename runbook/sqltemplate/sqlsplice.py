"""Where SQL text made by `| ident` or `| literal` may be spliced into a statement.

A fragment is quoted by psycopg, so on its own it is one token: `'it''s'`,
`"my table"`, `5`. Spliced into the wrong place it is not: inside a comment a
literal holding `*/` or a newline ends the comment; inside a string it ends the
string; after an `E` the quotes of `'\\'` mean something else; next to another
quote two strings merge. So a fragment must stand as a whole token in code:
outside strings, quoted identifiers and comments (inside a dollar-quoted body,
the body's own text is lexed the same way, as PL/pgSQL is SQL too), with no
region of the statement crossing its edges, and with neighbours that cannot
glue to it.

The same rules serve twice: on a template's *shape*, before any value exists
(the fragment a marker, its neighbours the author's text), and on the final
statement, the fragment's text in place (runbook.sqltemplate.sqlvalues, runbook.sqltemplate.sqlprogram).
"""

from __future__ import annotations

from runbook.sqltemplate import sqltext

# Characters that may not touch a fragment: they would lengthen the token or
# change how its quotes are read (E'…', U&"…", B'…', 'a''b', x$1, 1.5).
_GLUE = frozenset("'\"$\\&.")
# Before a fragment also `-`: with a literal -5 it would open a `--` comment.
_GLUE_BEFORE = _GLUE | {"-"}
_MARKERS = frozenset("\x00\x01\x02")  # runbook.sqltemplate.sqlvalues' markers

_WHERE = {
    "string": "a quoted string",
    "identifier": "a quoted identifier",
    "comment": "a comment",
    "dollar": "a dollar-quoted body",
}


def _glues(char: str, before: bool, dotted: bool) -> bool:
    if char.isspace():
        return False
    if char in _MARKERS:
        return True  # two outputs side by side: neither stands alone
    if char == "." and dotted:
        return False  # schema.{{ t | ident }}, {{ s | ident }}.name
    if char in (_GLUE_BEFORE if before else _GLUE):
        return True
    return char.isalnum() or char == "_" or not char.isascii()


def fault(
    text: str, start: int, end: int, what: str, dotted: bool, backslashes: bool = False
) -> str | None:
    """Why the fragment at text[start:end] does not stand as a whole token, or None.

    `what` names it in the message (`{{ x | literal }}`); `dotted`: an identifier,
    which may touch a dot. `backslashes`: the text read as with
    standard_conforming_strings off (sqltext.regions).
    """
    spans = sqltext.regions(text, backslashes)
    for k in range(sqltext.first_ending_after(spans, start), len(spans)):
        span = spans[k]
        if span.start >= end:
            break
        if span.start < start:
            if span.kind == "dollar" and span.end >= end:
                return _in_body(text, span, start, end, what, dotted, backslashes)
            return _inside(span.kind, what)
        if span.end > end:
            return (
                f"{what} would run into the SQL after it (a quote or comment marker right after "
                "it, or a value that ends it): put a space or an operator after it"
            )
    first = text[start] if start < end else ""
    last = text[end - 1] if start < end else ""
    if start > 0 and not first.isspace() and _glues(text[start - 1], True, dotted):
        return _glued(what, text[start - 1], "before")
    if end < len(text) and not last.isspace() and _glues(text[end], False, dotted):
        return _glued(what, text[end], "after")
    return None


def _glued(what: str, char: str, where: str) -> str:
    touching = "another output" if char in _MARKERS else repr(char)
    return (
        f"{what} must stand as a whole SQL token: {touching} right {where} it would join "
        "it to another token; put a space or an operator between them"
    )


def _in_body(
    text: str,
    body: sqltext.Region,
    start: int,
    end: int,
    what: str,
    dotted: bool,
    backslashes: bool,
) -> str | None:
    """A fragment inside a dollar-quoted body: the body is lexed as SQL of its
    own, both ways a session may read its strings. The statement itself is
    read with standard_conforming_strings on (runbook connects so, and will
    not splice into a session that turned it off); a body runs later, after
    whatever its own code sets (even a SET written in parts and EXECUTEd)."""
    tag = sqltext.dollar_tag(text, body.start)
    inner_start = body.start + len(tag)
    inner_end = body.end - len(tag) if text.endswith(tag, inner_start, body.end) else body.end
    if end > inner_end:
        return _inside("dollar", what)  # it reaches the closing tag
    inner = text[inner_start:inner_end]
    at, to = start - inner_start, end - inner_start
    return fault(inner, at, to, what, dotted, backslashes) or fault(
        inner, at, to, what, dotted, backslashes=True
    )


def _inside(kind: str, what: str) -> str:
    if kind == "comment":
        fix = "move it out of the comment (a comment cannot hold a value)"
    elif kind == "string":
        fix = "drop the quotes around it: | literal quotes the value itself"
    elif kind == "identifier":
        fix = "drop the double quotes around it: | ident quotes the name itself"
    else:
        fix = "keep it outside the body"
    return f"{what} inside {_WHERE[kind]} would be pasted as text there; {fix}"
