"""Ask the running server: a command's request sent to the server on its data folder.

A server (``llm-eng serve``, stdio or HTTP) keeps the index open and the models loaded; a
command that finds it answers in a fraction of a second instead of loading them again.
When none answers (none runs, it was killed, it runs with other settings) the command works
in process as before, and with ``-v`` says why on stderr. A socket left by a killed server
is removed. Nothing here imports more than the standard library.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from llm_engineering.cli.options import fail

if TYPE_CHECKING:
    from llm_engineering.config import Settings

__all__ = ["Verbose", "from_server", "served"]

T = TypeVar("T")

Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", help="Say whether a running server answered.")
]


def from_server(
    settings: Settings,
    op: str,
    args: dict[str, Any],
    *,
    kind: str = "index",
    verbose: bool = False,
    on_token: Callable[[str], None] | None = None,
) -> Any | None:
    """The result of ``op`` from the server on ``settings.data_dir`` (JSON data), or None
    when the command must work in process. An error the server reports is the command's."""
    import json

    from llm_engineering.local.wire import (
        endpoint_path,
        expected,
        read_endpoint,
        read_message,
        socket_path,
        unix_sockets,
    )

    request: dict[str, Any] = {"op": op, "args": args, "expect": expected(settings, kind)}
    path = socket_path(settings.data_dir)
    endpoint = endpoint_path(settings.data_dir)
    try:
        inode = path.stat().st_ino if unix_sockets() else None
    except FileNotFoundError:  # no socket: a server on loopback TCP, or none
        inode = None
    if inode is not None:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # type: ignore[attr-defined,unused-ignore]
        target: Any = str(path)
    else:
        found = read_endpoint(endpoint)
        try:
            inode = endpoint.stat().st_ino
        except FileNotFoundError:
            found = None
        if found is None or inode is None:
            return _in_process(verbose, "no server runs on this data folder")
        path = endpoint
        connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        target, request["token"] = ("127.0.0.1", found[0]), found[1]
    try:
        connection.connect(target)
    except (ConnectionRefusedError, FileNotFoundError):
        connection.close()
        _remove_stale(path, inode)
        return _in_process(verbose, f"removed {path}: the server that made it is gone")
    except OSError as exc:
        connection.close()
        return _in_process(verbose, f"cannot reach the server ({exc})")
    with connection, connection.makefile("rwb") as stream:
        try:
            stream.write((json.dumps(request) + "\n").encode())
            stream.flush()
            while True:
                message = read_message(stream)
                if message is None:
                    return _in_process(verbose, "the server closed the connection")
                if "token" in message:
                    if on_token is not None:
                        on_token(str(message["token"]))
                    continue
                break
        except OSError as exc:
            return _in_process(verbose, f"the server stopped answering ({exc})")
    if message.get("ok"):
        if verbose:
            typer.echo(f"note: answered by the server on {path}", err=True)
        return message.get("result")
    if "mismatch" in message:
        differ = ", ".join(message["mismatch"])
        return _in_process(verbose, f"the server runs with another {differ}")
    if message.get("internal"):
        return _in_process(verbose, str(message.get("error")))
    raise fail(str(message.get("error")))


def served(
    settings: Settings,
    op: str,
    request: dict[str, Any],
    kind: type[T],
    here: Callable[[], T],
    verbose: bool = False,
) -> T:
    """``op``'s result from the running server, revived as ``kind``, or ``here()`` (the same
    work in process) when none answers. Either raises the command's error as ``fail``."""
    from llm_engineering.errors import LlmEngError
    from llm_engineering.local.wire import revive

    remote = from_server(settings, op, request, verbose=verbose)
    if remote is not None:
        return revive(kind, remote)
    try:
        return here()
    except LlmEngError as exc:
        raise fail(str(exc)) from exc


def _in_process(verbose: bool, why: str) -> Any | None:
    """None (work in process), saying why with ``-v``."""
    if verbose:
        typer.echo(f"note: working in process: {why}", err=True)
    return None


def _remove_stale(path: Path, inode: int) -> None:
    """Remove a socket nothing listens on (its server was killed), unless a starting server
    has put its own in its place since (a server moves its socket there once it listens)."""
    try:
        if path.stat().st_ino == inode:
            path.unlink()
    except FileNotFoundError:
        pass
