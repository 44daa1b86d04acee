"""How the journal's events are hashed: canonical JSON, record digests, the chain.

Version 2 (every event written since `meta.hash_version` says so):

    record = canonical JSON of [at, run_id, kind] + "\n" + canonical JSON of the payload
    digest = hex(SHA-256(UTF-8 bytes of record))       (the payload parsed from its text)
    hash   = hex(SHA-256(ASCII bytes of prev_hash + digest))  (prev_hash of the first: 64 zeros)

Canonical JSON: keys sorted, no whitespace (`,` and `:`), UTF-8 with non-ASCII
characters unescaped, as orjson writes with OPT_SORT_KEYS; what orjson cannot
write (integers past 64 bits, lone surrogates) as Python's json.dumps writes it
with sort_keys and those separators (non-ASCII escaped as backslash-u).
Hashing the record's canonical form rather than the stored text means a payload re-encoded elsewhere (an export, another
JSON library) still verifies; chaining digests means an event can be checked
given only its neighbours' hashes, and a run's events can be tied to a
checkpoint with nothing of the other events but their digests.

Version 1 (journals written before): hash = hex(SHA-256(UTF-8 of
"prev|at|run_id|kind|payload")) over the stored payload text.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

GENESIS = "0" * 64
HASH_VERSION = 2

_SORTED = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def canonical(value: Any) -> str:
    """The canonical JSON text of a value (dates and other objects via str())."""
    try:
        return orjson.dumps(value, default=str, option=_SORTED).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def record_digest(at: str, run_id: str | None, kind: str, payload: str) -> str:
    """Digest of an event as written: `payload` is already canonical text."""
    return sha(f"{canonical([at, run_id, kind])}\n{payload}")


def chain(prev: str, digest: str) -> str:
    return hashlib.sha256(f"{prev}{digest}".encode()).hexdigest()


def hash_v1(prev: Any, at: Any, run_id: Any, kind: Any, payload: Any) -> str:
    return sha(f"{prev}|{at}|{run_id or ''}|{kind}|{payload}")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
