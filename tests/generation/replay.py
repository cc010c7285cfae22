"""A tiny local HTTP server that replays vLLM's or llama-server's protocol, for the tests.

Neither server runs on these machines (vLLM needs a GPU; no llama-server binary is
installed), so the tests talk to this stand-in: it answers with the shapes in
``protocol/*.json`` (transcribed from each server's documentation and source; the file
says from where), keeps each server's adapter semantics (vLLM: an adapter is a model name,
loaded at run time only when allowed; llama-server: adapters fixed at start, picked per
request by id, every adapter not named at scale 0), and records every request it gets.
Each reply is the text the test gave for the adapter the request selected.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PROTOCOL = Path(__file__).parent / "protocol"


def fill(template: Any, **values: Any) -> Any:
    """``template`` with ``"{name}"`` strings replaced by ``values[name]`` (typed), and
    ``{name}`` inside longer strings by its text."""
    if isinstance(template, dict):
        return {k: fill(v, **values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, **values) for v in template]
    if isinstance(template, str):
        for name, value in values.items():
            if template == "{" + name + "}":
                return value
        for name, value in values.items():
            template = template.replace("{" + name + "}", str(value))
    return template


@dataclass
class Request:
    method: str
    path: str
    body: Any


@dataclass
class Replay:
    """What the stand-in serves; tests read ``requests`` and change the rest between calls."""

    kind: str
    replies: dict[str, str]
    """vllm: model name -> reply; llama-server: adapter path (or "" for the base) -> reply."""
    lora_paths: list[str] = field(default_factory=list)
    """llama-server: the ``--lora`` files it was started with, in id order."""
    runtime_updates: bool = True
    """vllm: whether VLLM_ALLOW_RUNTIME_LORA_UPDATING was set (the load routes exist)."""
    base: dict[str, Any] | None = None
    """vllm: overrides of the base model's /v1/models entry (another base)."""
    requests: list[Request] = field(default_factory=list)
    loaded: dict[str, str] = field(default_factory=dict)
    """vllm: adapters loaded at run time, name -> path."""
    url: str = ""

    @property
    def protocol(self) -> dict[str, Any]:
        name = "vllm.json" if self.kind == "vllm" else "llama_server.json"
        return dict(json.loads((PROTOCOL / name).read_text()))

    def chats(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path == "/v1/chat/completions"]


@contextmanager
def replaying(replay: Replay) -> Iterator[Replay]:
    """Serve ``replay`` on a free loopback port until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(replay))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    replay.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield replay
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _handler(replay: Replay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length else None

        def _send(self, status: int, payload: Any) -> None:
            data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            self.send_response(status)
            kind = "text/plain" if isinstance(payload, str) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            replay.requests.append(Request("GET", self.path, None))
            protocol = replay.protocol
            if self.path == "/v1/models":
                self._send(200, {"object": "list", "data": _models(replay, protocol)})
            elif self.path == "/props" and replay.kind == "llama-server":
                self._send(200, protocol["props"])
            elif self.path == "/lora-adapters" and replay.kind == "llama-server":
                entries = [
                    fill(protocol["lora_adapter"], id=i, path=path)
                    for i, path in enumerate(replay.lora_paths)
                ]
                self._send(200, entries)
            else:
                self._send(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            body = self._body()
            replay.requests.append(Request("POST", self.path, body))
            protocol = replay.protocol
            if replay.kind == "vllm" and self.path in (
                "/v1/load_lora_adapter",
                "/v1/unload_lora_adapter",
            ):
                self._lora_route(body, protocol)
            elif self.path == "/v1/chat/completions":
                self._stream(body, protocol)
            else:
                self._send(404, {"detail": "Not Found"})

        def _lora_route(self, body: dict[str, Any], protocol: dict[str, Any]) -> None:
            if not replay.runtime_updates:
                self._send(404, protocol["route_missing"])
                return
            name = body["lora_name"]
            if self.path == "/v1/load_lora_adapter":
                if name in replay.loaded:
                    self._send(400, fill(protocol["load_already"], lora_name=name))
                    return
                replay.loaded[name] = body["lora_path"]
                self._send(200, fill(protocol["load_ok"], lora_name=name))
            else:
                replay.loaded.pop(name, None)
                self._send(200, fill(protocol["unload_ok"], lora_name=name))

        def _stream(self, body: dict[str, Any], protocol: dict[str, Any]) -> None:
            if replay.kind == "vllm":
                key = body["model"]
                base = {**protocol["base_model"], **(replay.base or {})}["id"]
                if key != base and key not in replay.loaded:
                    key = "(not served)"
            else:
                applied = [e["id"] for e in body.get("lora") or [] if e.get("scale")]
                key = replay.lora_paths[applied[0]] if applied else ""
            text = replay.replies.get(key)
            if text is None:  # vLLM: a model name it does not serve
                self._send(
                    404, {"object": "error", "message": f"The model `{key}` does not exist."}
                )
                return
            pieces = [word + " " for word in text.split(" ")]
            pieces[-1] = pieces[-1].rstrip()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            model = body.get("model", "")
            chunks = (
                [fill(protocol.get("first_chunk", {}), model=model)]
                if replay.kind == "vllm"
                else []
            )
            chunks += [fill(protocol["chunk"], model=model, piece=p) for p in pieces]
            chunks.append(fill(protocol["last_chunk"], model=model))
            usage = {"prompt_tokens": 20, "completion_tokens": len(pieces)}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            chunks.append(fill(protocol["usage_chunk"], model=model, **usage))
            for chunk in chunks:
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    return Handler


def _models(replay: Replay, protocol: dict[str, Any]) -> list[dict[str, Any]]:
    if replay.kind == "llama-server":
        return [protocol["model"]]
    base = {**protocol["base_model"], **(replay.base or {})}
    loras = [
        fill(protocol["lora_model"], lora_name=name, lora_path=path)
        for name, path in replay.loaded.items()
    ]
    return [base, *loras]
