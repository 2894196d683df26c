"""The local runtime's HTTP servers share this: 127.0.0.1, a free port, a daemon thread.

The HTTP API fronts, the local CodeBuild and SSM endpoints and the ITSM sandbox each
subclass :class:`LoopbackServer` with their own request handler, a
:class:`QuietHandler` (no access log on stderr; one way to send a body). The endpoints
that stand in front of the embedded AWS pass what they don't handle on with
:func:`forward`. Every one queues :data:`LISTEN_BACKLOG` connections, so a burst of
clients waits instead of being reset.
"""

from __future__ import annotations

import http.client
import sys
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["LISTEN_BACKLOG", "LoopbackServer", "QuietHandler", "forward"]

LISTEN_BACKLOG = 128
"""Connections the kernel queues before a server accepts them. The stdlib default of 5
resets connections when a few dozen clients (a load test, a burst of webhooks, the
functions' pollers) connect at once; 128 is the usual ``SOMAXCONN``."""

_SET_BY_THE_CONNECTION = {"content-length", "connection", "keep-alive", "transfer-encoding"}
_SET_BY_THE_SERVER = {*_SET_BY_THE_CONNECTION, "host", "server", "date"}
"""Headers a pass-through must not copy: the connection's own, and (answers) those the
local HTTP server adds to every answer itself. A request keeps its ``Host``: the SigV4
signature covers it, and the embedded AWS checks signatures."""


def forward(
    upstream: tuple[str, int],
    method: str,
    path: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
) -> tuple[int, dict[str, str], bytes]:
    """Pass one request on to ``upstream``: its status, the headers to pass back, the body.

    Raises :class:`OSError` when ``upstream`` does not answer.
    """
    connection = http.client.HTTPConnection(*upstream, timeout=60)
    try:
        connection.request(
            method,
            path,
            body=body,
            headers={k: v for k, v in headers if k.lower() not in _SET_BY_THE_CONNECTION},
        )
        response = connection.getresponse()
        answer = {k: v for k, v in response.getheaders() if k.lower() not in _SET_BY_THE_SERVER}
        return response.status, answer, response.read()
    finally:
        connection.close()


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps quiet and sends whole bodies."""

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: the runtime's own logs say what happened."""
        return

    def send_body(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        """Status, headers, ``Content-Length`` and the payload."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (its timeout, a fault test) is not an error of ours."""
        if isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 (a free port) serving in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Serve in the thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
