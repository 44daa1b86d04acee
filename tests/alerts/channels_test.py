"""HTTP channels and the http step against a real server on loopback that
answers with redirects: a redirect is never followed silently.

Without `follow_redirects: true` a redirect is a failed attempt, journaled with
its status and Location; with it, the method and the body are kept (307/308
semantics for every redirect), a bounded number of times, only to http(s).
Channel URLs other than http(s) are refused at validation, with their place.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ..conftest import Project
from ..loopback import http_server

REDIRECTS = (301, 302, 303, 307, 308)


@dataclass
class Redirector:
    url: str
    hits: list[dict[str, Any]] = field(default_factory=list)

    def at(self, path: str) -> list[dict[str, Any]]:
        return [h for h in self.hits if h["path"] == path]


@pytest.fixture
def redirector() -> Iterator[Redirector]:
    """/r/CODE answers CODE to /sink; /x/CODE to /sink on another origin
    (localhost); /file/CODE to file:///etc/passwd; /loop to itself; /sink
    answers 200."""
    state = Redirector("")
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with lock:
                state.hits.append(
                    {
                        "path": self.path,
                        "method": self.command,
                        "body": body,
                        "token": self.headers.get("X-Token"),
                    }
                )
            parts = self.path.strip("/").split("/")
            if parts[0] in ("r", "file", "x") and len(parts) == 2:
                port = self.server.server_address[1]
                where = {"r": "/sink", "file": "file:///etc/passwd"}.get(
                    parts[0], f"http://localhost:{port}/sink"
                )
                self.send_response(int(parts[1]))
                self.send_header("Location", where)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if parts[0] == "loop":
                self.send_response(307)
                self.send_header("Location", "/loop")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            out = json.dumps({"method": self.command}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handler) as url:
        state.url = url
        yield state


def _inventory(project: Project, channels: str) -> None:
    project.write(
        "inventory.yaml",
        f"targets:\n  db: {{dsn: {project.dsn!r}}}\ndefault_target: db\nchannels:\n{channels}",
    )


def _notify(project: Project, channel: str) -> Any:
    book = project.playbook(
        f"""name: tell
kind: check
steps:
  - name: Tell
    notify: {{channels: [{channel}], message: the payload, subject: hello}}
"""
    )
    return project.run("run", str(book))


def _delivery(project: Project) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    journal = project.journal()
    try:
        row = journal.query("SELECT * FROM deliveries ORDER BY id DESC")[0]  # the last one
        attempts = journal.query(
            f"SELECT * FROM attempts WHERE delivery_id = {int(row['id'])} ORDER BY attempt"
        )
        return row, attempts
    finally:
        journal.close()


@pytest.mark.parametrize("code", REDIRECTS)
@pytest.mark.parametrize("kind", ["webhook", "slack", "pagerduty"])
def test_a_redirect_is_a_failed_attempt_unless_allowed(
    project: Project, redirector: Redirector, code: int, kind: str
) -> None:
    extra = ", routing_key: k" if kind == "pagerduty" else ""
    _inventory(
        project,
        f"  out: {{type: {kind}, url: {redirector.url}/r/{code}{extra}, retry: {{attempts: 2, delay: 0}}}}\n",
    )
    result = _notify(project, "out")
    assert result.exit_code == 0, result.output
    assert redirector.at("/sink") == []  # never followed, never turned into a GET
    assert [h["method"] for h in redirector.at(f"/r/{code}")] == ["POST", "POST"]
    row, attempts = _delivery(project)
    assert row["status"] == "failed" and row["attempts"] == 2
    for attempt in attempts:
        assert attempt["ok"] == 0
        assert f"HTTP {code} redirect to /sink" in attempt["detail"]
    assert "0/1 delivered" in project.last_run()["steps"][0]["note"]


@pytest.mark.parametrize("code", REDIRECTS)
def test_an_allowed_redirect_keeps_the_method_and_the_body(
    project: Project, redirector: Redirector, code: int
) -> None:
    _inventory(
        project,
        f"  out: {{type: webhook, url: {redirector.url}/r/{code}, follow_redirects: true, retry: {{attempts: 1}}}}\n",
    )
    result = _notify(project, "out")
    assert result.exit_code == 0, result.output
    (sink,) = redirector.at("/sink")
    assert sink["method"] == "POST"
    assert json.loads(sink["body"])["message"] == "the payload"
    row, attempts = _delivery(project)
    assert row["status"] == "delivered"
    assert "after 1 redirect(s)" in attempts[0]["detail"]


def test_an_allowed_redirect_goes_only_to_http_and_only_so_far(
    project: Project, redirector: Redirector
) -> None:
    _inventory(
        project,
        f"""  esc: {{type: webhook, url: {redirector.url}/file/302, follow_redirects: true, retry: {{attempts: 1}}}}
  loop: {{type: webhook, url: {redirector.url}/loop, follow_redirects: true, max_redirects: 3, retry: {{attempts: 1}}}}
""",
    )
    _notify(project, "esc")
    row, attempts = _delivery(project)
    assert row["status"] == "failed"
    assert "only a redirect to an http(s) URL is followed" in attempts[0]["detail"]
    _notify(project, "loop")
    row, attempts = _delivery(project)
    assert row["status"] == "failed" and "more than 3 redirects" in attempts[0]["detail"]
    assert len(redirector.at("/loop")) == 4  # the request and three redirects


def test_the_http_step_keeps_method_and_body_and_headers_stay_home(
    project: Project, redirector: Redirector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", "tok-s3cret")
    book = project.playbook(
        f"""name: post
kind: check
steps:
  - name: Post
    http:
      url: {redirector.url}/r/302
      method: POST
      json: {{a: 1}}
      headers: {{X-Token: {{from_env: TOKEN}}}}
    writes: false
    register: answer
"""
    )
    result = project.run("run", str(book), "--format", "json")
    assert result.exit_code == 0, result.output
    (sink,) = redirector.at("/sink")
    assert sink["method"] == "POST" and json.loads(sink["body"]) == {"a": 1}
    assert sink["token"] == "tok-s3cret"  # same origin: the header goes along
    # Another origin (localhost is not 127.0.0.1): the body goes, the token stays.
    project.write("playbooks/p.yaml", book.read_text().replace("/r/302", "/x/307"))
    result = project.run("run", str(book), "--format", "json")
    assert result.exit_code == 0, result.output
    second = redirector.at("/sink")[1]
    assert second["method"] == "POST" and second["token"] is None


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/x",
        "gopher://127.0.0.1:70/",
        "http:/no-host",
        "javascript:alert(1)",
        "//127.0.0.1/hook",
    ],
)
def test_a_channel_url_must_be_http(project: Project, url: str) -> None:
    _inventory(project, f"  out: {{type: webhook, url: {json.dumps(url)}}}\n")
    result = _notify(project, "out")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "inventory.yaml:5:29: $.channels.out.url" in result.output
    assert "must be an http:// or https:// URL" in result.output
    assert not project.root.joinpath(".runbook/journal.sqlite").exists() or _no_deliveries(project)


def _no_deliveries(project: Project) -> bool:
    journal = project.journal()
    try:
        return journal.query("SELECT id FROM deliveries") == []
    finally:
        journal.close()


@pytest.mark.parametrize(
    "setting, message",
    [
        ("follow_redirects: 'yes'", "follow_redirects"),
        ("max_redirects: 99", "max_redirects"),
        ("timeout: 1h", "timeout must be more than 0 and at most 300s"),
        ("timeout: 0", "timeout must be more than 0"),
        ("timeout: .inf", "timeout"),
    ],
)
def test_channel_settings_are_checked(project: Project, setting: str, message: str) -> None:
    _inventory(project, f"  out: {{type: webhook, url: 'http://127.0.0.1:9/x', {setting}}}\n")
    result = _notify(project, "out")
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "path, error",
    [
        ("/file/302", "only a redirect to an http(s) URL is followed"),
        ("/loop", "more than 5 redirects"),
    ],
)
def test_the_http_step_never_follows_a_redirect_out_of_http_or_forever(
    project: Project, redirector: Redirector, path: str, error: str
) -> None:
    book = project.playbook(
        f"name: get\nkind: check\nsteps:\n  - name: Get\n    http: {{url: '{redirector.url}{path}'}}\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3, result.output
    assert error in project.last_run()["steps"][0]["error"]
    assert len(redirector.at(path)) <= 6


def test_a_header_from_the_environment_is_data_not_a_template(
    project: Project, redirector: Redirector, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Validation never sees an environment value: rendering it would run code nobody checked.
    monkeypatch.setenv("TOKEN", "{{ run.id }}-{{ ''.__class__ }}")
    book = project.playbook(
        f"""name: env-header
kind: check
steps:
  - name: Post
    http:
      url: {redirector.url}/sink
      method: POST
      json: {{a: 1}}
      headers: {{X-Token: {{from_env: TOKEN, secret: false}}}}
    writes: false
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    (sink,) = redirector.at("/sink")
    assert sink["token"] == "{{ run.id }}-{{ ''.__class__ }}"
