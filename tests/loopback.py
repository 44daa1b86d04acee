"""Real servers on 127.0.0.1 for the tests: HTTP in a thread, SMTP (aiosmtpd),
and the webhook receiver most tests talk to (`receiver`, a fixture: import it)."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest


@contextlib.contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free port of 127.0.0.1; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def smtp_server(on_message: Callable[[bytes], None]) -> Iterator[int]:
    """A real SMTP server (aiosmtpd) on a free port of 127.0.0.1; yields the port.
    Each message received, as bytes, goes to `on_message`."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            on_message(envelope.content)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@dataclass
class Receiver:
    """What the receiver got; paths it fails (`fail_first`), slows or hangs on."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_first: dict[str, int] = field(default_factory=dict)
    slow: dict[str, float] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)  # accepted, read, never answered
    held: int = 0

    def on(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver("")
    lock = threading.Lock()
    closing = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path in state.hang:
                with lock:
                    state.held += 1
                closing.wait(120)
                return
            with lock:
                state.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": json.loads(body or b"null"),
                    }
                )
                failures = state.fail_first.get(self.path, 0)
                if failures:
                    state.fail_first[self.path] = failures - 1
            time.sleep(state.slow.get(self.path, 0.0))
            self.send_response(500 if failures else 202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handler) as url:
        state.url = url
        yield state
        closing.set()
