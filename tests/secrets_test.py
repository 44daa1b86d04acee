"""Secrets through the real CLI, on a real database, to real receivers: in no
output, no file, no channel, not in the journal's bytes — in none of the
spellings a secret takes on its way (percent-encoded either case, quote_plus,
JSON-escaped, base64).

The hostile secret has characters every encoder changes: `/`, `%`, `&`, a
quote, a space.
"""

from __future__ import annotations

import base64
import html
import http.server
import json
import urllib.parse
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from runbook.redact import Redactor, first_line, redact_dsn

from .conftest import Project
from .loopback import http_server, smtp_server

SECRET = "p/ss%w0rd&x 'q"  # a -e secret and a DSN password
TOKEN = "t0k/en%&secret"  # an http header and a channel header, from the environment


def spellings(secret: str) -> list[str]:
    quoted = urllib.parse.quote(secret, safe="")
    return [
        secret,
        quoted,
        quoted.lower(),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
        urllib.parse.quote_plus(secret).lower(),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=True)[1:-1],
        secret.replace("'", "''"),
        html.escape(secret),
        base64.b64encode(secret.encode()).decode(),
    ]


def assert_clean(where: str, data: str | bytes) -> None:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    for secret in (SECRET, TOKEN):
        for spelled in spellings(secret):
            assert spelled not in text, f"{spelled!r} (a spelling of a secret) in {where}"


@pytest.fixture
def echo() -> Iterator[dict[str, Any]]:
    """An HTTP server that echoes every request header back, in a header and as
    JSON (raw and percent-encoded), and records every request it receives."""
    state: dict[str, Any] = {"got": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state["got"].append({"path": self.path, "body": body})
            token = self.headers.get("X-Token") or ""
            out = json.dumps(
                {"echo": dict(self.headers), "quoted": urllib.parse.quote(token).lower()}
            ).encode()
            self.send_response(200)
            self.send_header("X-Echo", urllib.parse.quote(token))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handler) as url:
        state["url"] = url
        yield state


@pytest.fixture
def mailbox() -> Iterator[dict[str, Any]]:
    box: dict[str, Any] = {"raw": []}
    with smtp_server(box["raw"].append) as port:
        box["port"] = port
        yield box


def _uri_with_password(dsn: str, password: str) -> str:
    """The project's key=value DSN as a URI whose password is percent-encoded in
    lower case (as people write them by hand)."""
    params = dict(part.split("=", 1) for part in dsn.split())
    encoded = urllib.parse.quote(password, safe="").lower()
    host = urllib.parse.quote(params["host"], safe="")
    port = f"&port={params['port']}" if "port" in params else ""  # a server not on 5432
    return f"postgresql://{params['user']}:{encoded}@/{params['dbname']}?host={host}{port}"


BOOK = """name: leaky
kind: check
escalation: oncall
vars: {{pw: null}}
secrets: [pw]
steps:
  - name: Echo the token
    http:
      url: {url}/echo
      headers: {{X-Token: {{from_env: TOKEN}}}}
    writes: false
    register: echoed
  - name: Tell everyone
    notify:
      channels: [log, hook, mail]
      subject: "subject {{{{ pw }}}}"
      message: "message {{{{ pw }}}} and {{{{ pw | urlencode }}}} and {{{{ echoed.text }}}}"
  - name: An error that quotes the value
    query: SELECT {{{{ pw }}}}::int AS n
    on_failure: continue
  - name: Open one by hand
    escalate: {{severity: CRITICAL, message: "by hand {{{{ pw }}}}", key: "k-{{{{ pw }}}}"}}
  - name: Gate with the secret in its message
    query: SELECT 1 AS n
    register: r
    gate: {{that: r.scalar == 0, severity: CRITICAL, message: "failed for {{{{ pw }}}}"}}
"""


def test_a_hostile_secret_reaches_no_sink(
    project: Project,
    echo: dict[str, Any],
    mailbox: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("TOKEN", TOKEN)
    monkeypatch.setenv("HOOK_TOKEN", TOKEN)
    project.write(
        "inventory.yaml",
        f"""targets:
  db: {{dsn: {_uri_with_password(project.dsn, SECRET)!r}}}
default_target: db
channels:
  log: {{type: file, path: notifications.jsonl}}
  hook: {{type: webhook, url: {echo["url"]}/hook, headers: {{X-Token: {{from_env: HOOK_TOKEN}}}}}}
  mail: {{type: email, host: 127.0.0.1, port: {mailbox["port"]}, from: rb@example.com, to: [ops@example.com]}}
policies:
  oncall:
    severities:
      CRITICAL:
        levels:
          - {{after: 0m, notify: [log, hook, mail]}}
""",
    )
    book = project.playbook(BOOK.format(url=echo["url"]))
    junit = tmp_path / "junit.xml"
    text = project.run("run", str(book), "-e", f"pw={SECRET}", "--junit", str(junit))
    assert text.exit_code == 3, text.output
    assert "***" in text.stdout
    assert_clean("the run's output", text.output)
    assert_clean("the JUnit file", junit.read_bytes())
    as_json = project.run("run", str(book), "-e", f"pw={SECRET}", "--format", "json")
    assert_clean("the run's --format json", as_json.output)
    json.loads(as_json.stdout)  # still a document

    run_id = project.last_run()["id"]
    for args in (
        ("history",),
        ("history", "--format", "json"),
        ("show", run_id),
        ("show", run_id, "--format", "json"),
        ("incidents",),
        ("incidents", "--format", "json"),
    ):
        shown = project.run(*args)
        assert shown.exit_code == 0, shown.output
        assert_clean(f"runbook {' '.join(args)}", shown.output)
    for path in (project.root / ".runbook").glob("journal.sqlite*"):
        assert_clean(f"the journal's bytes ({path.name})", path.read_bytes())
    assert_clean("the file channel", (project.root / "notifications.jsonl").read_bytes())
    hook_bodies = [g["body"] for g in echo["got"] if g["path"] == "/hook"]
    assert len(hook_bodies) >= 2  # the notify step, and the incident
    for body in hook_bodies:
        assert_clean("what the webhook received", body)
    assert len(mailbox["raw"]) >= 2
    for raw in mailbox["raw"]:
        message = message_from_bytes(raw)
        assert_clean("the mail", raw)
        assert_clean("the mail's subject", str(message["Subject"]))


SHORT_BOOK = """name: short
kind: check
vars: {pin: null}
secrets: [pin]
steps:
  - name: An error that quotes the value
    query: SELECT {{ pin }}::int AS n
"""


def test_a_short_secret_is_masked_where_it_is_known_to_be_one(project: Project) -> None:
    project.write(
        "inventory.yaml",
        f"targets:\n  db: {{dsn: {_uri_with_password(project.dsn, 'q7')!r}}}\ndefault_target: db\n",
    )
    book = project.playbook(SHORT_BOOK)
    for fmt in ("rich", "json"):
        result = project.run("run", str(book), "-e", "pin=ab", "--format", fmt)
        assert result.exit_code == 3, result.output
        assert 'type integer: "***"' in result.output or 'integer: \\"***\\"' in result.output
        assert '"ab"' not in result.output and '\\"ab\\"' not in result.output
        assert ":q7@" not in result.output and "password=q7" not in result.output
    run_id = project.last_run()["id"]
    for args in (("show", run_id), ("show", run_id, "--format", "json"), ("history",)):
        shown = project.run(*args).output
        assert '"ab"' not in shown and '\\"ab\\"' not in shown and ":q7@" not in shown
    raw = b"".join(p.read_bytes() for p in (project.root / ".runbook").glob("journal.sqlite*"))
    assert b'\\"ab\\"' not in raw and b":q7@" not in raw


@pytest.mark.parametrize(
    "text",
    [
        "{s}",
        "a{s}b",
        "{q}",
        "{q_lower}",
        "{plus}",
        "{json}",
        "{b64}",
        "url?password={q_lower}&x=1",
    ],
)
def test_every_spelling_is_masked(text: str) -> None:
    secret = "p/ss%w0rd&x 'q"
    quoted = urllib.parse.quote(secret, safe="")
    filled = text.format(
        s=secret,
        q=quoted,
        q_lower=quoted.lower(),
        plus=urllib.parse.quote_plus(secret),
        json=json.dumps({"k": secret}),
        b64=base64.b64encode(secret.encode()).decode(),
    )
    masked = Redactor([secret]).text(filled)
    assert "***" in masked
    for spelled in spellings(secret):
        assert spelled not in masked


@pytest.mark.parametrize(
    "text, masked",
    [
        ('invalid input syntax for type integer: "ab"', 'integer: "***"'),
        ("Key (k)=(ab) already exists.", "Key (k)=(***)"),
        ("Failing row contains (1, ab).", "(1, ***)"),
        ("ab", "***"),
        ("label about cabs", "label about cabs"),  # inside words: left alone
    ],
)
def test_the_short_secret_rule(text: str, masked: str) -> None:
    assert masked in Redactor(["ab"]).text(text)


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u:q7@h/db",
        "postgresql://u:p%2fss@h/db",
        "host=h dbname=db password=q7 user=u",
        "host=h password='a b' user=u",
        "postgresql://u@h/db?password=p%2Fss",
    ],
)
def test_a_dsn_password_is_masked_whatever_its_length_or_encoding(dsn: str) -> None:
    shown = redact_dsn(dsn)
    assert "***" in shown
    for leaked in ("q7", "p%2fss", "p%2Fss", "a b", "p/ss"):
        assert leaked not in shown


@pytest.mark.parametrize(
    "dsn, fragment",
    [
        ("host=/tmp dbname=x password=sekret part2word", "part2word"),
        ("postgresql://u:p%zzsekret@h/db", "p%zzsekret"),
    ],
)
def test_an_invalid_dsn_is_refused_without_quoting_its_password(
    project: Project, dsn: str, fragment: str
) -> None:
    project.write("inventory.yaml", f"targets:\n  db: {{dsn: {dsn!r}}}\ndefault_target: db\n")
    result = project.run("run", str(project.playbook(SHORT_BOOK)), "-e", "pin=1")
    assert result.exit_code == 2, result.output
    assert "invalid DSN" in result.output and "Traceback" not in result.output
    assert fragment not in result.output and "sekret" not in result.output


@pytest.mark.parametrize(
    "said, shown",
    [
        (
            "cannot reach host=h dbname=db password=q7z user=u: refused\nDETAIL: more",
            "cannot reach host=h dbname=db password=*** user=u: refused",
        ),
        ("failed for postgresql://u:q7z@h/db\nHINT: q7z", "failed for postgresql://u:***@h/db"),
    ],
)
def test_an_errors_first_line_shows_no_dsn_password(said: str, shown: str) -> None:
    """What every "cannot …: <error>" message quotes (the journal, the
    queue, a target, a drill's copy, the scheduler): its first line, a DSN
    in it (a URI too, not only at the start) without its password."""
    assert first_line(RuntimeError(said)) == shown
    assert first_line(RuntimeError("  ")) == "RuntimeError"
