"""A tiny HTTP server on loopback whose answers a test writes: ``answer(path, body) -> (status, reply)``.

For what a real server cannot be made to do on cue (fail one batch, hold requests until
several are in flight) and for the rerank servers, whose models do not ship offline.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[str, Any], tuple[int, Any]]


class Stub:
    """The running stub: its URL and every request it saw, as (path, body)."""

    def __init__(self, url: str):
        self.url = url
        self.requests: list[tuple[str, Any]] = []


@contextmanager
def http_stub(answer: Answer) -> Iterator[Stub]:
    """Serve ``answer`` on 127.0.0.1 (a free port) until the block ends."""
    seen: list[tuple[str, Any]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw) if raw else None
            with lock:
                seen.append((self.path, body))
            status, reply = answer(self.path, body)
            # A str goes as plain text, as some servers send their errors.
            text = isinstance(reply, str)
            data = (reply if text else json.dumps(reply)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if text else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub = Stub(f"http://127.0.0.1:{server.server_address[1]}")
    stub.requests = seen
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
