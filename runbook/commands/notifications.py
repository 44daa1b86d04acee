"""Notifications for runs: none until channels are wired (see runbook.escalation)."""

from __future__ import annotations

from typing import Any


def notifier_for(*args: Any) -> Any:
    return None
