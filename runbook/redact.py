"""Secrets never reach output, channels or the journal.

The set of secret values is known when a run starts (DSN passwords, variables
listed under `secrets:`, `{from_env: …}` values not marked `secret: false`),
and grows as steps resolve more (an http step's `{from_env}` header). One
redactor holds them all; every sink — the journal, the console, `--format
json`, JUnit, every channel — passes what it writes through it.

What it recognises, for a secret of 4 characters or more, anywhere in a text:
the secret itself and every way it gets encoded on its way through a URL, a
JSON document or an SQL literal — each character raw, percent-encoded (upper
or lower case hex, `+` for a space, any mix: what `quote`, `quote_plus` and
hand-written URLs produce), JSON-escaped (`\\"`, `\\\\`, `\\/`, `\\n`, `\\u00e9`
in either case), an XML/HTML character reference (`&amp;`, `&#39;`,
`&#x2F;`), or a quote doubled or backslash-escaped as SQL and Python write
them; and its base64 (standard or URL-safe, padded or not) as a whole.

A secret shorter than 4 characters is masked where it is known to be a value:
a whole value equal to it (a parameter, a cell, a variable, a header, a
field), the password of a DSN, and, in free text, where it stands as a whole
token between delimiters — quotes, brackets, commas, `=` or `:`, or the start
or end of the text — which is how PostgreSQL quotes values in its errors
(`invalid input syntax for type integer: "ab"`, `Key (k)=(ab)`, `Failing row
contains (1, ab)`). Inside a word it is not masked: masking every "a" of every
text would make output useless and hide nothing more.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any

MASK = "***"
_MIN_SUBSTRING = 4
_JSON_SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_JSON_SHORT |= {"\b": "\\b", "\f": "\\f"}
_XML_NAMED = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}
_DELIMITERS = r"""["'`()\[\]{},=:]"""


def _hex(digits: str) -> str:
    """Hex digits, matched in either case."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in digits)


def _char(c: str) -> str:
    """Every spelling of one character of a secret, as a regular expression."""
    forms = [re.escape(c)]
    forms.append("".join("%" + _hex(f"{b:02X}") for b in c.encode()))
    if c == " ":
        forms.append(r"\+")
    if c in _JSON_SHORT:
        forms.append(re.escape(_JSON_SHORT[c]))
    if c == "'":
        forms += ["''", r"\\'"]
    point = ord(c)
    if c in _XML_NAMED:
        forms.append(re.escape(_XML_NAMED[c]))
    forms.append(f"&#0*{point};")
    forms.append(f"&#[xX]0*{_hex(f'{point:X}')};")
    if point < 0x10000:
        forms.append(r"\\u" + _hex(f"{point:04X}"))
    else:  # a JSON surrogate pair
        high, low = divmod(point - 0x10000, 0x400)
        forms.append(r"\\u" + _hex(f"{0xD800 + high:04X}") + r"\\u" + _hex(f"{0xDC00 + low:04X}"))
    return "(?:" + "|".join(forms) + ")"


def _base64(secret: str) -> list[str]:
    raw = secret.encode()
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    return sorted({standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("=")}, key=len)[::-1]


def pattern_for(secret: str) -> str:
    """The regular expression that finds `secret` in any of its encodings."""
    spelled = "".join(_char(c) for c in secret)
    return "|".join([spelled, *(re.escape(b) for b in _base64(secret))])


class Redactor:
    def __init__(self, secrets: Iterable[Any] = ()) -> None:
        self._exact: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._probe: re.Pattern[str] | None = None
        self._short: re.Pattern[str] | None = None
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
        ordered = sorted(self._exact, key=len, reverse=True)
        long = [pattern_for(s) for s in ordered if len(s) >= _MIN_SUBSTRING]
        short = "|".join(pattern_for(s) for s in ordered if len(s) < _MIN_SUBSTRING)
        self._pattern = re.compile("|".join(long)) if long else None
        # The short ones: a plain search first (cheap), the token rule only on a hit.
        self._probe = re.compile(short) if short else None
        self._short = (
            re.compile(
                rf"(?:^|(?<={_DELIMITERS})|(?<={_DELIMITERS}\s))(?:{short})"
                rf"(?=\s*(?:$|{_DELIMITERS}))"
            )
            if short
            else None
        )

    def __bool__(self) -> bool:
        return bool(self._exact)

    def text(self, value: str) -> str:
        if not self._exact:
            return value
        if value in self._exact:
            return MASK
        if self._pattern is not None:
            value = self._pattern.sub(MASK, value)
        if self._short is not None and self._probe is not None and self._probe.search(value):
            value = self._short.sub(MASK, value)
        return value

    def value(self, value: Any) -> Any:
        """Redact inside any JSON-like value (keys too: a secret can be a key)."""
        if not self._exact:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                (self.text(k) if isinstance(k, str) else k): self.value(v) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if isinstance(value, bytes):  # kept as it is, unless it holds a secret
            decoded = value.decode("utf-8", errors="replace")
            return MASK if self.text(decoded) != decoded else value
        if value is not None and not isinstance(value, bool) and str(value) in self._exact:
            return MASK
        return value


def dsn_password(dsn: str) -> str | None:
    """The password inside a libpq DSN or URI, if any."""
    from psycopg.conninfo import conninfo_to_dict

    if "@" not in dsn and "password" not in dsn.lower():
        # Neither a URI's user:password@ nor a password keyword or parameter:
        # there is none (libpq's parser costs 0.1-0.2 ms, a few times a target).
        return None
    try:
        params = conninfo_to_dict(dsn)
    except Exception:
        match = re.search(r"://[^:/@]*:([^@]*)@", dsn) or re.search(r"password\s*=\s*(\S+)", dsn)
        return match.group(1) if match else None
    password = params.get("password")
    return str(password) if password else None


# Anywhere, not only at the start: an error message may quote a URI.
_URI_PASSWORD = re.compile(
    r"(?<![a-zA-Z0-9+.-])([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@?#\s]*:)([^@/?#\s]*)(@)"
)
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|\S+)")


def redact_dsn(dsn: str) -> str:
    """A DSN fit to show: its password field replaced by *** whatever its length
    or encoding (the field is known to be secret), and any other spelling of
    the password masked by the redactor's rule."""
    shown = _URI_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), dsn)
    shown = _QUERY_PASSWORD.sub(lambda m: m.group(1) + MASK, shown)
    shown = _KV_PASSWORD.sub(lambda m: m.group(1) + MASK, shown)
    password = dsn_password(dsn)
    return Redactor([password]).text(shown) if password else shown


def first_line(exc: BaseException) -> str:
    """The error's first line, any DSN in it shown without its password."""
    text = str(exc).strip()
    return redact_dsn(text.splitlines()[0]) if text else type(exc).__name__
