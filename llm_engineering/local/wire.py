"""What the CLI and a running server say to each other over the data folder's socket.

One request per connection, a line of JSON: ``{"op": "search", "args": {...}, "expect":
{...}}``; the answer is lines of JSON too: any number of ``{"token": "..."}`` (an answer
being written), then ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``
(an error the in-process command would print), or ``{"ok": false, "mismatch": [...]}``
(the server runs with other settings than the command was given: the command works in
process). Results are the in-process results as JSON (``dataclasses.asdict``), so
``--json`` prints the same either way, and :func:`revive` makes them objects again.

This module is on the command line's fast path: it imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import typing
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "ENDPOINT_NAME",
    "EXPECTED",
    "SOCKET_NAME",
    "endpoint_path",
    "expected",
    "read_endpoint",
    "read_message",
    "revive",
    "socket_path",
    "to_wire",
    "unix_sockets",
]

SOCKET_NAME = "cli.sock"
ENDPOINT_NAME = "cli.endpoint"
"""Where a server listening on loopback TCP (no UNIX sockets, or ``cli_transport = "tcp"``)
writes its port and the token a command must give: a file only the user can read."""
_MAX_PATH = 100
"""A UNIX socket's path must fit in 108 bytes (sun_path), its terminating NUL included."""

EXPECTED = {
    "index": ("embedding_model", "chroma_url"),
    "answer": ("embedding_model", "chroma_url", "llm_model", "llm_url"),
}
"""The settings a server must share with the command for its results to be the command's."""

T = TypeVar("T")


def socket_path(data_dir: Path) -> Path:
    """Where the server that writes ``data_dir`` listens: in the folder, or, when that path is
    too long for a socket, in the temporary folder under a name made from it."""
    path = Path(data_dir).absolute() / SOCKET_NAME
    if len(os.fsencode(path)) <= _MAX_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"llm-eng-{os.getuid()}-{digest}.sock"


def unix_sockets() -> bool:
    """Whether this platform has UNIX sockets."""
    import socket

    return hasattr(socket, "AF_UNIX")


def endpoint_path(data_dir: Path) -> Path:
    return Path(data_dir).absolute() / ENDPOINT_NAME


def read_endpoint(path: Path) -> tuple[int, str] | None:
    """(port, token) from a loopback server's endpoint file, None when there is none or it
    cannot be read."""
    try:
        data = json.loads(path.read_text())
        return int(data["port"]), str(data["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def expected(settings: Any, kind: str) -> dict[str, str]:
    """The settings of ``kind`` (``index`` or ``answer``) as the command and server compare them."""
    return {name: str(getattr(settings, name)) for name in EXPECTED[kind]}


def to_wire(value: Any) -> Any:
    """A result as JSON-ready data: what ``json.dumps(asdict(value), default=str)`` writes."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str))


def read_message(stream: Any, limit: int = 64 * 1024 * 1024) -> dict[str, Any] | None:
    """The next line of JSON from a binary stream (None at its end)."""
    line = stream.readline(limit + 1)
    if not line:
        return None
    if len(line) > limit:
        raise ValueError(f"a message over {limit} bytes")
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    return message


def revive(cls: type[T], data: Any) -> T:
    """``data`` (from :func:`to_wire`) as an instance of the dataclass ``cls`` again, its
    fields' dataclasses and lists of them too."""
    return typing.cast(T, _revive(cls, data))


def _revive(kind: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(kind)
    if origin is typing.Union or type(kind).__name__ == "UnionType":
        for arg in typing.get_args(kind):
            if dataclasses.is_dataclass(arg) and isinstance(data, dict):
                return _revive(arg, data)
        return data
    if origin is list and isinstance(data, list):
        (item,) = typing.get_args(kind) or (Any,)
        return [_revive(item, x) for x in data]
    if isinstance(kind, type) and dataclasses.is_dataclass(kind) and isinstance(data, dict):
        hints = _hints(kind)
        names = {f.name for f in dataclasses.fields(kind) if f.init}
        return kind(**{k: _revive(hints.get(k, Any), v) for k, v in data.items() if k in names})
    return data


def _hints(cls: type) -> dict[str, Any]:
    """The field types of ``cls``, resolved; ``{}`` (fields stay data) when one cannot be."""
    try:
        return typing.get_type_hints(cls)
    except NameError:
        return {}
