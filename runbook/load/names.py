"""Names a playbook may not take, and names shown so that a look-alike shows.

Reserved: what runbook or Jinja puts into every template's scope. A value
registered, `set`, declared in `vars` or given with `-e` under one of these
names would silently replace the built-in (`register: run` hid `run.id`), or
be unreachable (`{{ if }}` is not a name). They are refused where they are
written.

Shown: a key or name quoted in a message is escaped when it holds anything but
printable ASCII, so that `nаme` with a Cyrillic `а` reads 'n\\u0430me', not
'nаme', and a key that only looks like a known one is called a look-alike.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from jinja2.defaults import DEFAULT_NAMESPACE

from runbook.sqltemplate import template

# What the engine puts into a step's scope (runbook.service builds the
# first four; `result` is the step's own result) and what Jinja always has.
BUILTIN_VARS = frozenset({"target", "run", "playbook", "now"})
ENGINE_NAMES = BUILTIN_VARS | {"result"}
# Jinja: globals (range, dict, namespace, cycler, joiner, lipsum: runbook's
# templates drop the last four, but a name Jinja itself means stays refused so
# that a playbook reads the same to anyone who knows Jinja), the constants, the
# loop variable, the names a template or macro body defines, and the words of
# its expression grammar.
JINJA_NAMES = (
    template.BUILTIN_NAMES
    | frozenset(DEFAULT_NAMESPACE)
    | {
        "loop",
        "self",
        "caller",
        "varargs",
        "kwargs",
        "and",
        "or",
        "not",
        "in",
        "is",
        "if",
        "else",
    }
)
RESERVED = ENGINE_NAMES | JINJA_NAMES


def reserved_why(name: str) -> str | None:
    """Why `name` cannot be a variable or register name, or None if it can."""
    if name in ENGINE_NAMES:
        return f"{shown(name)} is a built-in of every step (runbook sets it); choose another name"
    if name in JINJA_NAMES:
        return f"{shown(name)} is reserved by the template language; choose another name"
    if name.startswith("__"):
        return f"{shown(name)}: names starting with '__' are reserved for runbook's own use"
    return None


# Letters of other scripts drawn like ASCII ones (the usual spoofing set).
_CONFUSABLE = str.maketrans(
    dict(
        zip(
            "аВвЕеКкМмНОоРрСсТтуХхЅѕІіЈјԁһӏօԛԝΑΒΕΖΗΙΚΜΝΟΡΤΥΧαορνικτυχ",
            "aBBEeKkMmHOoPpCcTtyXxSsIiJjdhloqwABEZHIKMNOPTYXaopvikTux",
            strict=True,
        )
    )
)


def skeleton(text: str) -> str:
    """What `text` looks like in ASCII, as far as it can be told."""
    folded = unicodedata.normalize("NFKD", text).translate(_CONFUSABLE)
    return "".join(c for c in folded if not unicodedata.combining(c))


def shown(text: str) -> str:
    """`text` quoted for a message; escaped (`'n\\u0430me'`) unless printable ASCII."""
    if text.isascii() and text.isprintable():
        return repr(text)
    return ascii(text)


def lookalike(text: str, known: Iterable[str]) -> str | None:
    """The known ASCII name `text` imitates with other characters, if any."""
    if text.isascii():
        return None
    drawn = skeleton(text)
    return next((k for k in known if k == drawn), None)


def lookalike_note(text: str, known: Iterable[str]) -> str:
    """' (a look-alike of 'name': …)' when `text` imitates a known name, else ''."""
    original = lookalike(text, known)
    if original is None:
        return " (it holds non-ASCII characters)" if not text.isascii() else ""
    return (
        f" (a look-alike of {original!r}: it holds non-ASCII characters, "
        f"shown escaped; type the key in plain ASCII)"
    )
