"""Where the private key that signs the journal's checkpoints is (runbook.journal.checkpoint).

Kept apart from the signing code so that finding out costs a run nothing: the
cryptography package is imported only when a key is configured.
"""

from __future__ import annotations

import os
from pathlib import Path

from runbook.model import Inventory

KEY_ENV = "RUNBOOK_JOURNAL_KEY_FILE"


def key_file_for(inventory: Inventory | None) -> Path | None:
    """$RUNBOOK_JOURNAL_KEY_FILE, else the inventory's `journal: {key_file: …}`
    (relative to the inventory's folder), else None: checkpoints are unsigned."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env)
    if inventory is None or inventory.doc is None or not isinstance(inventory.doc.data, dict):
        return None
    journal = inventory.doc.data.get("journal")
    named = journal.get("key_file") if isinstance(journal, dict) else None
    return inventory.root / named if isinstance(named, str) and named else None
