"""The running server's door for the command line: a UNIX socket in its data folder.

``llm-eng search``, ``ask``, ``show``, ``ls``, ``status``, ``jobs`` and ``adapters`` ask the server that has the
index open and its models loaded instead of loading them again (seconds each time), and
get the very results they would have computed (:mod:`.wire`). The socket is the owner's
only (mode 0600, in a folder the owner writes); one is taken over only when nothing
answers on it (a server killed before it could remove it).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import secrets
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_engineering.errors import LlmEngError
from llm_engineering.local.wire import (
    endpoint_path,
    expected,
    read_endpoint,
    read_message,
    socket_path,
    to_wire,
    unix_sockets,
)

if TYPE_CHECKING:
    from llm_engineering.context import AppContext

__all__ = ["LocalServer", "answering", "answering_tcp"]

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], None]


def answering_tcp(port: int) -> bool:
    """Whether something listens on loopback ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def answering(path: Path) -> bool:
    """Whether a server answers on the socket at ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


class LocalServer:
    """Serves the CLI's requests from ``app``'s services, in background threads."""

    def __init__(self, app: AppContext):
        self.app = app
        self.path = socket_path(app.settings.data_dir)
        self.endpoint = endpoint_path(app.settings.data_dir)
        self._server: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None
        self._inode: int | None = None
        self._token: str | None = None

    def start(self) -> bool:
        """Listen, unless another server already does on this data folder (False then)."""
        transport = self.app.settings.cli_transport
        tcp = transport == "tcp" or not unix_sockets()  # "unix" where there are none: TCP
        if self._taken():
            log.info("another server answers the command line on %s", self.app.settings.data_dir)
            return False
        server = self._listen_tcp() if tcp else self._listen_unix()
        server.daemon_threads = True  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="llm-eng-cli-socket", daemon=True
        )
        self._thread.start()
        where = self.endpoint if tcp else self.path
        log.info("the command line reaches this server through %s", where)
        return True

    def _taken(self) -> bool:
        if unix_sockets() and self.path.exists() and answering(self.path):
            return True
        found = read_endpoint(self.endpoint)
        return found is not None and answering_tcp(found[0])

    def _handler(self) -> type[socketserver.StreamRequestHandler]:
        handle = self._handle

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                handle(self.rfile, self.wfile)

        return Handler

    def _listen_unix(self) -> socketserver.BaseServer:
        # Bound under a name of its own, made owner-only, listening, and only then moved to
        # its place: a command never finds the socket there before it answers.
        fresh = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        fresh.unlink(missing_ok=True)
        old = os.umask(0o177)
        try:
            server = socketserver.ThreadingUnixStreamServer(str(fresh), self._handler())
        finally:
            os.umask(old)
        os.chmod(fresh, 0o600)
        os.replace(fresh, self.path)
        self._inode = self.path.stat().st_ino
        return server

    def _listen_tcp(self) -> socketserver.BaseServer:
        """Loopback only, any free port; the port and a fresh token go in a file only the
        user can read, and every request must carry the token."""
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler())
        self._token = secrets.token_hex(32)
        fresh = self.endpoint.with_name(f".{self.endpoint.name}.{os.getpid()}")
        descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump({"port": server.server_address[1], "token": self._token}, out)
        os.replace(fresh, self.endpoint)
        self._inode = self.endpoint.stat().st_ino
        return server

    def close(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        mine = self.endpoint if self._token is not None else self.path
        try:  # remove it only if it is still ours (not a later server's)
            if mine.stat().st_ino == self._inode:
                mine.unlink()
        except FileNotFoundError:
            pass
        self._server = None

    def _handle(self, reader: Any, writer: Any) -> None:
        def send(message: dict[str, Any]) -> None:
            writer.write((_dumps(message) + "\n").encode())
            writer.flush()

        try:
            request = read_message(reader)
            if request is None:
                return
            if self._token is not None and not hmac.compare_digest(
                str(request.get("token", "")), self._token
            ):
                send({"ok": False, "error": "wrong token", "internal": True})
                return
            op, args = str(request.get("op")), dict(request.get("args") or {})
            kind = "answer" if op == "ask" else "index"
            mine = expected(self.app.settings, kind)
            wanted = dict(request.get("expect") or {})
            differ = sorted(k for k, v in wanted.items() if mine.get(k) != v)
            if differ:
                send({"ok": False, "mismatch": differ})
                return
            handler = _OPS.get(op)
            if handler is None:
                send({"ok": False, "error": f"unknown request {op!r}"})
                return
            send({"ok": True, "result": to_wire(handler(self.app, args, send))})
        except LlmEngError as exc:
            send({"ok": False, "error": str(exc)})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the command went away (Ctrl-C)
        except Exception as exc:
            log.exception("a command-line request failed")
            with contextlib.suppress(OSError):
                send({"ok": False, "error": f"the server failed: {exc}", "internal": True})


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, default=str)


def _status(app: AppContext, args: dict[str, Any], send: Send) -> Any:
    return app.status()


def _search(app: AppContext, args: dict[str, Any], send: Send) -> Any:
    index = app.require_index()
    status = app.status()
    hits: list[Any] = []
    took_ms = 0.0
    if status.documents:
        hits, took_ms = index.search(
            args["query"], top_k=args["top_k"], mode=args["mode"],
            path_prefix=args.get("path_prefix"), file_types=args.get("file_types"),
            rerank=bool(args.get("rerank")),
        )  # fmt: skip
    return {"hits": [to_wire(hit) for hit in hits], "took_ms": took_ms, "status": to_wire(status)}


def _show(app: AppContext, args: dict[str, Any], send: Send) -> Any:
    return app.require_index().get_document(**args)


def _ls(app: AppContext, args: dict[str, Any], send: Send) -> Any:
    return app.require_index().list_documents(**args)


def _ask(app: AppContext, args: dict[str, Any], send: Send) -> Any:
    contexts = args.get("contexts")
    answerer = app.require_answerer(needs_index=contexts is None)
    stream = bool(args.pop("stream", False))
    return answerer.answer(
        **args, on_token=(lambda token: send({"token": token})) if stream else None
    )


def _jobs(app: AppContext, args: dict[str, Any], send: Send) -> Any:
    from llm_engineering.cli.train import job_listing

    return job_listing(app.require_training().jobs(limit=50))


def _adapters(app: AppContext, args: dict[str, Any], send: Send) -> Any:
    from llm_engineering.cli.train import adapter_listing

    training = app.require_training()
    listing = training.adapter_listing()
    return adapter_listing(listing, training.where_served(app.require_generators(), listing.cards))


_OPS: dict[str, Callable[[AppContext, dict[str, Any], Send], Any]] = {
    "status": _status,
    "search": _search,
    "show": _show,
    "ls": _ls,
    "ask": _ask,
    "jobs": _jobs,
    "adapters": _adapters,
}
