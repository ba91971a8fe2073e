"""A loopback HTTP server whose answers tests set: path -> (status, headers, body)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from controller.testing.ports import serving


@dataclass
class Loopback:
    url: str
    port: int
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # (method, path, headers)


@pytest.fixture()
def loopback() -> Iterator[Loopback]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    box = Loopback(f"http://127.0.0.1:{port}", port)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            box.seen.append((self.command, self.path, dict(self.headers)))
            status, headers, body = box.routes.get(self.path.split("?")[0], (404, {}, b"no such path"))
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer  # noqa: N815 - the stdlib's names

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server.RequestHandlerClass = Handler
    server.handle_error = lambda request, client_address: None  # type: ignore[method-assign] # a client gone mid-answer
    with serving(server):
        yield box
