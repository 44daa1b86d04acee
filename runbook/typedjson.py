"""Values as the journal keeps them for resume: JSON that gives back the same type.

A registered result is read back when a run is resumed or rolled back, and its
values are bound again as parameters: a bytea must come back as bytes, a
numeric as Decimal, an interval as timedelta — not as the text they were shown
as (`base64:…` bound as text broke the real playbook). Values JSON has no type
for are written as `{"$pg": TYPE, "v": TEXT}`; a mapping that itself has a
`$pg` key is wrapped (`{"$pg": "object", "v": …}`), so nothing a query returns
can pass for a tag.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import ipaddress
import math
import uuid
from collections.abc import Mapping
from typing import Any

from runbook.errors import JournalError

TAG = "$pg"
_PLAIN = frozenset({type(None), bool, int, str})


def encode(value: Any) -> Any:
    """A JSON value that `decode` turns back into `value` (same type, same value)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if isinstance(value, bool | int | str):
        return value if kind in (bool, int, str) else _tag("text", str(value))
    if isinstance(value, float):
        return value if math.isfinite(value) else _tag("float", repr(value))
    if isinstance(value, decimal.Decimal):
        return _tag("numeric", str(value))
    if isinstance(value, datetime.datetime):
        return _tag("timestamptz" if value.tzinfo else "timestamp", value.isoformat())
    if isinstance(value, datetime.date):
        return _tag("date", value.isoformat())
    if isinstance(value, datetime.time):
        return _tag("time", value.isoformat())
    if isinstance(value, datetime.timedelta):
        return _tag("interval", [value.days, value.seconds, value.microseconds])
    if isinstance(value, bytes | bytearray | memoryview):
        return _tag("bytea", base64.b64encode(bytes(value)).decode())
    if isinstance(value, uuid.UUID):
        return _tag("uuid", str(value))
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return _tag("inet", str(value))
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return _tag("cidr", str(value))
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return _tag("address", str(value))
    if isinstance(value, Mapping):
        inner = {str(k): encode(v) for k, v in value.items()}
        return _tag("object", inner) if TAG in inner else inner
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    # A type with no JSON form of its own (a range, a composite): kept as its
    # text, and said so, rather than guessed back into something else.
    return _tag("text", str(value))


def _tag(kind: str, text: Any) -> dict[str, Any]:
    return {TAG: kind, "v": text}


_DECODERS: dict[str, Any] = {
    "float": float,
    "numeric": decimal.Decimal,
    "timestamptz": datetime.datetime.fromisoformat,
    "timestamp": datetime.datetime.fromisoformat,
    "date": datetime.date.fromisoformat,
    "time": datetime.time.fromisoformat,
    "interval": lambda v: datetime.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "bytea": lambda v: base64.b64decode(v),
    "uuid": uuid.UUID,
    "inet": ipaddress.ip_interface,
    "cidr": ipaddress.ip_network,
    "address": ipaddress.ip_address,
    "text": str,
}


def decode(value: Any) -> Any:
    """The value `encode` was given (untagged JSON comes back as it is)."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(TAG)
    if kind is None:
        return {k: decode(v) for k, v in value.items()}
    if kind == "object":
        return {k: decode(v) for k, v in value["v"].items()}
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise JournalError(f"a recorded value of type {kind!r} that this runbook cannot read back")
    return decoder(value["v"])
