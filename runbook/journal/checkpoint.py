"""Checkpoints of the journal: (event count, head hash), signed with Ed25519.

A hash chain alone cannot show that its tail was cut off, nor that someone
with write access recomputed it after an edit. A checkpoint kept elsewhere
shows the first: the journal must still hold `count` events and reproduce
`head` at the last of them. A signature shows the second: only the holder of
the private key, which is kept outside the journal, can make one, and anyone
with the public key can check it offline.

The signed message is the UTF-8 text

    runbook-journal-checkpoint/1\\ncount=<count>\\nhead=<head>\\nat=<at>\\n
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from runbook.errors import InputError, JournalError
from runbook.journal.events import GENESIS, checkpoint_request
from runbook.journal.store import JournalStore

FORMAT = "runbook-journal-checkpoint/1"
EVERY = 1000  # events between checkpoints a writer with the key adds on its own


@dataclass(frozen=True)
class Checkpoint:
    count: int  # events up to the head: the head's seq (seqs run 1, 2, 3… without gaps)
    head: str
    at: str
    key_id: str | None = None
    signature: str | None = None  # base64 of the Ed25519 signature

    def message(self) -> bytes:
        return f"{FORMAT}\ncount={self.count}\nhead={self.head}\nat={self.at}\n".encode()

    def serialize(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "count": self.count,
            "head": self.head,
            "at": self.at,
            "key_id": self.key_id,
            "signature": self.signature,
        }


def parse(data: Any, where: str) -> Checkpoint:
    """A checkpoint from its JSON form; InputError saying what is wrong."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f'{where}: not a runbook journal checkpoint (no "format": {FORMAT!r})')
    count, head, at = data.get("count"), data.get("head"), data.get("at")
    key_id, signature = data.get("key_id"), data.get("signature")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise InputError(f'{where}: "count" must be a whole number of events')
    if not (isinstance(head, str) and len(head) == 64 and _is_hex(head)):
        raise InputError(f'{where}: "head" must be a SHA-256 hash in hex')
    if not isinstance(at, str):
        raise InputError(f'{where}: "at" must be a time')
    if not all(v is None or isinstance(v, str) for v in (key_id, signature)):
        raise InputError(f'{where}: "key_id" and "signature" must be text or null')
    return Checkpoint(count, head, at, key_id, signature)


def read(path: Path) -> Checkpoint:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the checkpoint {path}: {exc}") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path}: not JSON: {exc}") from None
    return parse(data, str(path))


class Signer:
    """The private key, kept outside the journal."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public = key.public_key()
        self.key_id = key_id(self.public)

    def sign(self, count: int, head: str, at: str) -> Checkpoint:
        unsigned = Checkpoint(count, head, at, self.key_id)
        signature = base64.b64encode(self._key.sign(unsigned.message())).decode()
        return Checkpoint(count, head, at, self.key_id, signature)


def key_id(public: Ed25519PublicKey) -> str:
    """The first 16 hex digits of SHA-256 over the raw 32-byte public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_signer(path: Path) -> Signer:
    """The private key at `path`; refused if others may read it (as ssh does)."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the journal key {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(
            f"the journal key {path} is readable by others (mode {stat.S_IMODE(mode):o}): chmod 600 it"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InputError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path}: not an Ed25519 key")
    return Signer(key)


def load_public(path: Path) -> Ed25519PublicKey:
    """A public key (PEM), or the public half of a private key file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the public key {path}: {exc.strerror}") from None
    if b"PRIVATE KEY" in data:
        return load_signer(path).public
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise InputError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{path}: not an Ed25519 public key")
    return key


def signature_problem(cp: Checkpoint, public: Ed25519PublicKey) -> str | None:
    """Why a checkpoint's signature does not hold under `public`, or None."""
    if cp.signature is None:
        return "it is not signed"
    if cp.key_id != key_id(public):
        return f"it names key {cp.key_id}, not this public key ({key_id(public)})"
    try:
        public.verify(base64.b64decode(cp.signature, validate=True), cp.message())
    except (InvalidSignature, binascii.Error, ValueError):
        return "its signature does not verify: forged or altered"
    return None


def generate(out: Path) -> Signer:
    """A new key written to `out` (0600, never over an existing file)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError(f"{out} exists: not overwriting a key") from None
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return Signer(key)


def take(journal: JournalStore, at: str) -> Checkpoint:
    """A checkpoint of the journal as it is now: signed and recorded in the
    journal when it has a key (unless its last event is one already), else
    unsigned and recorded nowhere."""
    count, head = journal.head()
    signer = journal.signer
    if count == 0:  # nothing to record it after: the empty chain
        return signer.sign(0, GENESIS, at) if signer else Checkpoint(0, GENESIS, at)
    if signer is None:
        return Checkpoint(count, head, at)
    last = journal.latest_checkpoint()
    if last is None or last[0] != count:
        # Appended after whatever was written meanwhile: it covers all of it.
        journal.append_prepared([(*checkpoint_request(at), None)])
        last = journal.latest_checkpoint()
    if last is None:
        raise JournalError(f"no checkpoint could be written to {journal.where}")
    return parse(last[1], f"event {last[0]} of {journal.where}")


def latest(journal: JournalStore) -> tuple[int, Any] | None:
    """(position, checkpoint data) of the last checkpoint recorded in the journal."""
    return journal.latest_checkpoint()


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
