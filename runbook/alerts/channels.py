"""Notification channels: one sender per type, each raising DeliveryError on failure.

A notification is a plain dict (event, message, severity, incident …). Secrets
in channel settings come from `{from_env: NAME}` and are resolved at send time.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runbook import variables
from runbook.model import Channel, seconds

DEFAULT_TIMEOUT = 10.0  # seconds, per attempt
MAX_TIMEOUT = 300.0  # what `timeout:` may say
_DEADLINE_SLACK = 1.0  # past the timeout, before an attempt is given up
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
_PAGERDUTY_SEVERITY = {0: "info", 1: "warning", 2: "critical"}  # by nagios level


class DeliveryError(Exception):
    """One attempt to deliver failed; the message says why."""


def _value(raw: Any, what: str, secrets: set[str]) -> Any:
    """A setting's value; `{from_env: NAME}` (at any depth the schema allows) is read now."""
    from runbook.load.loader import env_or_value

    return variables.resolve(env_or_value(raw), what, secrets)


def setting(channel: Channel, key: str, secrets: set[str], default: Any = None) -> Any:
    value = channel.settings.get(key, default)
    return _value(value, f"channel {channel.name!r} {key}", secrets) if value is not None else None


def _post(
    channel: Channel, url: str, body: dict[str, Any], headers: dict[str, str], timeout: float
) -> str:
    from runbook.alerts import httpclient

    try:
        answer = httpclient.request(
            url,
            method="POST",
            data=json.dumps(body, default=str).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "runbook", **headers},
            timeout=timeout,
            follow_redirects=bool(channel.settings.get("follow_redirects")),
            max_redirects=int(channel.settings.get("max_redirects", httpclient.MAX_REDIRECTS)),
            limit=64_000,
        )
    except httpclient.HttpError as exc:
        raise DeliveryError(str(exc)) from None
    via = f" after {answer.redirects} redirect(s) to {answer.url}" if answer.redirects else ""
    if not 200 <= answer.status < 300:
        raise DeliveryError(f"HTTP {answer.status} from {answer.url}{via}")
    return f"HTTP {answer.status}{via}"


def _headers(channel: Channel, secrets: set[str]) -> dict[str, str]:
    raw = channel.settings.get("headers", {}) or {}
    return {
        k: str(_value(v, f"channel {channel.name!r} header {k}", secrets)) for k, v in raw.items()
    }


def _text(note: dict[str, Any]) -> str:
    severity = f"[{note['severity']}] " if note.get("severity") else ""
    where = " / ".join(str(note[k]) for k in ("playbook", "target") if note.get(k))
    return f"{severity}{note.get('subject') or note['message']}" + (f" ({where})" if where else "")


def send_webhook(
    channel: Channel, note: dict[str, Any], secrets: set[str], root: Path, timeout: float
) -> str:
    return _post(
        channel, str(setting(channel, "url", secrets)), note, _headers(channel, secrets), timeout
    )


def send_slack(
    channel: Channel, note: dict[str, Any], secrets: set[str], root: Path, timeout: float
) -> str:
    body: dict[str, Any] = {"text": _text(note)}
    if note.get("message") and note.get("subject"):
        body["text"] += f"\n{note['message']}"
    for key in ("channel", "username"):
        if channel.settings.get(key):
            body[key] = channel.settings[key]
    return _post(channel, str(setting(channel, "url", secrets)), body, {}, timeout)


def send_pagerduty(
    channel: Channel, note: dict[str, Any], secrets: set[str], root: Path, timeout: float
) -> str:
    """Events API v2: trigger on open/escalate, acknowledge, resolve; deduplicated by incident key."""
    action = {"acknowledge": "acknowledge", "resolve": "resolve"}.get(
        str(note.get("event")), "trigger"
    )
    incident = note.get("incident") or {}
    body: dict[str, Any] = {
        "routing_key": str(setting(channel, "routing_key", secrets)),
        "event_action": action,
        "dedup_key": incident.get("key") or note.get("key") or "runbook",
    }
    if action == "trigger":
        body["payload"] = {
            "summary": _text(note)[:1024],
            "source": str(note.get("target") or "runbook"),
            "severity": _PAGERDUTY_SEVERITY.get(int(note.get("nagios", 2)), "critical"),
            "component": note.get("playbook"),
            "group": note.get("gate"),
            "custom_details": {
                k: note.get(k) for k in ("message", "run_id", "level", "level_name", "occurrences")
            },
        }
    return _post(channel, str(setting(channel, "url", secrets, PAGERDUTY_URL)), body, {}, timeout)


def send_email(
    channel: Channel, note: dict[str, Any], secrets: set[str], root: Path, timeout: float
) -> str:
    import smtplib
    from email.message import EmailMessage

    recipients = list(note.get("to") or channel.settings.get("to") or [])
    if not recipients:
        raise DeliveryError(f"channel {channel.name!r} has no recipients (to:)")
    message = EmailMessage()
    message["From"] = str(channel.settings["from"])
    message["To"] = ", ".join(recipients)
    message["Subject"] = _text(note)[:200]
    message.set_content(
        json.dumps(note, indent=2, default=str)
        if not note.get("message")
        else f"{note['message']}\n\n{json.dumps(note, indent=2, default=str)}"
    )
    starttls = bool(channel.settings.get("starttls"))
    port = int(channel.settings.get("port") or (587 if starttls else 25))
    try:
        with smtplib.SMTP(str(channel.settings["host"]), port, timeout=timeout) as smtp:
            if starttls:
                smtp.starttls()
            username = setting(channel, "username", secrets)
            if username:
                smtp.login(str(username), str(setting(channel, "password", secrets) or ""))
            refused = smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {channel.settings['host']}:{port}: {exc}") from None
    if refused:
        raise DeliveryError(f"recipients refused: {', '.join(refused)}")
    return f"sent to {len(recipients)} recipient(s)"


def send_command(
    channel: Channel, note: dict[str, Any], secrets: set[str], root: Path, timeout: float
) -> str:
    argv = [str(a) for a in channel.settings["argv"]]
    env = {
        **os.environ,
        **{
            k: str(_value(v, f"channel {channel.name!r} env {k}", secrets))
            for k, v in (channel.settings.get("env") or {}).items()
        },
    }
    try:
        proc = subprocess.run(
            argv,
            input=json.dumps(note, default=str),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=root,
            check=False,
        )
    except FileNotFoundError:
        raise DeliveryError(f"command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise DeliveryError(f"{argv[0]} timed out after {timeout:g}s") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or [""]
        raise DeliveryError(f"{argv[0]} exited with status {proc.returncode} {tail[0]}".strip())
    return f"{argv[0]} exited 0"


def send_file(
    channel: Channel, note: dict[str, Any], secrets: set[str], root: Path, timeout: float
) -> str:
    path = root / str(channel.settings["path"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(note, default=str, sort_keys=True) + "\n")
    except OSError as exc:
        raise DeliveryError(f"cannot write {path}: {exc.strerror}") from None
    return f"appended to {path}"


SENDERS: dict[str, Callable[[Channel, dict[str, Any], set[str], Path, float], str]] = {
    "webhook": send_webhook,
    "slack": send_slack,
    "pagerduty": send_pagerduty,
    "email": send_email,
    "command": send_command,
    "file": send_file,
}


def send(channel: Channel, note: dict[str, Any], secrets: set[str], root: Path) -> str:
    """One attempt, over within the channel's timeout whatever the receiver does;
    returns a detail line or raises DeliveryError.

    The sender runs on a thread of its own: a socket timeout bounds each read,
    not a receiver that trickles a byte at a time, a name lookup that hangs or a
    command's children that keep its output open. Past the deadline the attempt
    is given up (it may still arrive: delivery is at least once)."""
    timeout = seconds(channel.settings.get("timeout")) or DEFAULT_TIMEOUT
    outcome: dict[str, str] = {}

    def attempt() -> None:
        try:
            outcome["detail"] = SENDERS[channel.type](channel, note, secrets, root, timeout)
        except DeliveryError as exc:
            outcome["error"] = str(exc)
        except Exception as exc:  # a bad setting must not break the run
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=attempt, name=f"runbook-send-{channel.name}", daemon=True)
    worker.start()
    worker.join(timeout + _DEADLINE_SLACK)
    if "detail" in outcome:
        return outcome["detail"]
    raise DeliveryError(outcome.get("error") or f"no answer within {timeout:g}s")
