"""The running server's door for the command line: a UNIX socket in its data folder.

``llm-eng search``, ``ask``, ``show``, ``ls`` and ``status`` ask the server that has the
index open and its models loaded instead of loading them again (seconds each time), and
get the very results they would have computed (:mod:`.wire`). The socket is the owner's
only (mode 0600, in a folder the owner writes); one is taken over only when nothing
answers on it (a server killed before it could remove it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_engineering.errors import LlmEngError
from llm_engineering.local.wire import expected, read_message, socket_path, to_wire

if TYPE_CHECKING:
    from llm_engineering.context import AppContext

__all__ = ["LocalServer", "answering"]

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], None]


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
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None
        self._inode: int | None = None

    def start(self) -> bool:
        """Listen, unless another server already does on this data folder (False then)."""
        if self.path.exists() and answering(self.path):
            log.info("another server answers the command line on %s", self.path)
            return False
        handle = self._handle

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                handle(self.rfile, self.wfile)

        # Bound under a name of its own, made owner-only, listening, and only then moved to
        # its place: a command never finds the socket there before it answers.
        fresh = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        fresh.unlink(missing_ok=True)
        old = os.umask(0o177)
        try:
            server = socketserver.ThreadingUnixStreamServer(str(fresh), Handler)
        finally:
            os.umask(old)
        server.daemon_threads = True
        os.chmod(fresh, 0o600)
        os.replace(fresh, self.path)
        self._inode = self.path.stat().st_ino
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="llm-eng-cli-socket", daemon=True
        )
        self._thread.start()
        log.info("the command line reaches this server on %s", self.path)
        return True

    def close(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        try:  # remove it only if it is still ours (not a later server's)
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()
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
    import json

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


_OPS: dict[str, Callable[[AppContext, dict[str, Any], Send], Any]] = {
    "status": _status,
    "search": _search,
    "show": _show,
    "ls": _ls,
    "ask": _ask,
}
