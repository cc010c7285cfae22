"""``llm-eng serve``: the MCP server over stdio or streamable HTTP."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from llm_engineering.cli.options import INDEX_FLAGS, fail, with_settings
from llm_engineering.errors import LlmEngError

if TYPE_CHECKING:
    from llm_engineering.config import Settings

__all__ = ["serve"]


@with_settings("host", "port", "token", *INDEX_FLAGS)
def serve(
    http: Annotated[
        bool, typer.Option("--http", help="Serve streamable HTTP at /mcp instead of stdio.")
    ] = False,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Never write to the index.")
    ] = False,
    dashboard: Annotated[
        bool,
        typer.Option("--dashboard/--no-dashboard", help="With --http, the web dashboard at /."),
    ] = True,
    *,
    settings: Settings,
) -> None:
    """Run the MCP server (stdio by default; --http for streamable HTTP)."""
    if not http and sys.stdin.isatty():
        # Someone ran this by hand: say what is going on, on stderr (stdout is the protocol's).
        typer.echo(
            "llm-eng serve is an MCP server on stdio: it waits for an MCP client to talk JSON-RPC "
            "on stdin (what you type here is read as that). Let your assistant start it instead "
            "(see 'Connect your assistant' in the README, e.g. `claude mcp add llm-engineering -- "
            "llm-eng serve --watch FOLDER`), or run `llm-eng serve --http` and give clients its "
            "URL. Ctrl-C or Ctrl-D stops it.",
            err=True,
        )
        _stdin_through_a_pipe()
    from llm_engineering.server.app import create_server

    web = None
    if http and dashboard:
        from llm_engineering.dashboard import create_dashboard

        web = create_dashboard(settings)
    server = create_server(settings, read_only=read_only, on_open=web.attach if web else None)
    if http:
        from llm_engineering.server.http import run_http

        try:
            run_http(server, settings, web.app if web else None)
        except LlmEngError as exc:
            raise fail(str(exc), 2) from exc
    else:
        server.run("stdio")


def _stdin_through_a_pipe() -> None:
    """Feed the server's stdin from the terminal through a pipe that Ctrl-C closes.

    The MCP SDK reads stdin in a thread that nothing interrupts, so in a terminal a Ctrl-C
    left the server waiting for one more line; closing the pipe ends its input as Ctrl-D
    does, and it stops cleanly. A second Ctrl-C raises KeyboardInterrupt as usual.
    """
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return  # SIGINT ignored (a background job) or handled by whoever embeds us
    terminal = os.dup(0)
    read_end, write_end = os.pipe()
    os.dup2(read_end, 0)
    os.close(read_end)
    lock = threading.Lock()  # the write end is never used after it is closed (fds are reused)
    closed = False

    def close() -> bool:
        nonlocal closed
        with lock:
            was, closed = closed, True
            if not was:
                os.close(write_end)
        return not was

    def pump() -> None:
        while True:
            try:
                data = os.read(terminal, 65536)
            except OSError:
                data = b""
            with lock:
                if closed:
                    return
                if data:
                    try:
                        os.write(write_end, data)
                        continue
                    except OSError:
                        pass
            close()
            return

    def on_interrupt(signum: int, frame: object) -> None:
        if not close():
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)
    threading.Thread(target=pump, name="terminal-stdin", daemon=True).start()
