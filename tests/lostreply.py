"""A loopback proxy to a real PostgreSQL server that loses a connection at a
chosen moment: the client's statement lost on its way, or the server's answer
lost after it committed (tests of what is made again after a lost connection:
the journal's appends, the queue's jobs)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from typing import Any

from psycopg.conninfo import make_conninfo

COMMITTED = b"COMMIT\x00"  # the tag of COMMIT's CommandComplete: the server committed
# ReadyForQuery: after a statement in autocommit sent with its parameters
# (Parse, Bind, Execute, Sync), the server has committed when it says this.
READY = b"Z\x00\x00\x00\x05"


class Proxy:
    """127.0.0.1:port to the server. Armed, it waits for a client to send
    `on` (by default a COMMIT: an append). `lose_reply`: that reaches the
    server, whose answers are dropped until it says `done` (by default the
    COMMIT's tag: committed), and the connection is cut. `lose_request`: that
    never reaches the server, and the connection is cut. `hold_reply`: that
    reaches the server, whose answers are dropped from then on while the
    connection stays open (a server that stops answering). `refuse_after`:
    once cut, no new connection is let through (a server gone for good)."""

    def __init__(self, server: dict[str, Any]) -> None:
        self.server = server
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed: str | None = None
        self.on, self.done = b"COMMIT", COMMITTED
        self.refusing = False
        self.refuse_after = False
        self.cuts = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(
        self, how: str, on: bytes = b"COMMIT", done: bytes = COMMITTED, refuse_after: bool = False
    ) -> None:
        with self.lock:
            self.armed, self.on, self.done, self.refuse_after = how, on, done, refuse_after

    def _upstream(self) -> socket.socket:
        host = str(self.server.get("host") or "/tmp")
        port = int(self.server.get("port") or 5432)
        if host.startswith("/"):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(f"{host}/.s.PGSQL.{port}")
            return sock
        return socket.create_connection((host, port))

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pump, args=(client,), daemon=True).start()

    def _pump(self, client: socket.socket) -> None:
        if self.refusing:
            client.close()
            return
        try:
            server = self._upstream()
        except OSError:
            client.close()
            return
        with contextlib.suppress(OSError):  # either side gone: the connection ends
            self._forward(client, server)

    def _forward(self, client: socket.socket, server: socket.socket) -> None:
        losing: str | None = None
        swallowing = False
        heard = b""
        try:
            while True:
                ready, _, _ = select.select([client, server], [], [], 10)
                if not ready:
                    if swallowing and losing != "hold_reply":
                        return  # no COMMIT came: cut all the same, not hang
                    continue
                if client in ready:
                    data = client.recv(65536)
                    if not data:
                        return
                    with self.lock:  # taken by the first connection it applies to
                        if self.armed and self.on in data:
                            losing, self.armed = self.armed, None
                    if losing == "lose_request":
                        self._cut()
                        return  # the server never hears of it
                    swallowing = swallowing or losing in ("lose_reply", "hold_reply")
                    server.sendall(data)
                if server in ready:
                    data = server.recv(65536)
                    if not data:
                        return
                    if swallowing:
                        heard += data if losing == "lose_reply" else b""
                        if losing == "lose_reply" and self.done in heard:
                            self._cut()
                            return  # committed; the client never hears so
                        continue
                    client.sendall(data)
        finally:
            client.close()
            server.close()

    def _cut(self) -> None:
        with self.lock:
            self.cuts += 1
            self.refusing = self.refuse_after

    def dsn(self) -> str:
        params = {k: v for k, v in self.server.items() if k not in ("host", "hostaddr", "port")}
        return make_conninfo(
            **params, host="127.0.0.1", port=self.port, sslmode="disable", gssencmode="disable"
        )
