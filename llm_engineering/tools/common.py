"""What every tool module shares: the app context, annotations, error mapping, progress."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.from_thread
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from llm_engineering.context import AppContext
from llm_engineering.errors import LlmEngError, UserError

__all__ = ["ThreadProgress", "TokenStream", "app_of", "tool_hints", "user_errors"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def app_of(ctx: Context | ServerRequestContext[Any, Any]) -> AppContext:
    """The :class:`~llm_engineering.context.AppContext` opened by the lifespan.

    ``ctx``: a tool's Context, or the request context a lowlevel handler gets.
    """
    request = ctx.request_context if isinstance(ctx, Context) else ctx
    app = request.lifespan_context
    assert isinstance(app, AppContext), "the server was not built by create_server"
    return app


def tool_hints(
    title: str, *, read_only: bool, destructive: bool = False, idempotent: bool | None = None
) -> ToolAnnotations:
    """A tool's hints: none reach outside this machine; only deletes are destructive; read
    tools are idempotent unless said otherwise (a sampled answer is not)."""
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=read_only if idempotent is None else idempotent,
        open_world_hint=False,
    )


def user_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn our errors into tool errors whose message the agent reads and can act on.

    Anything else is a bug: the SDK logs it and the agent sees only a generic failure.
    """

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except UserError as exc:
            raise ToolError(str(exc)) from exc
        except LlmEngError as exc:
            log.warning("%s failed: %s", fn.__name__, exc)
            raise ToolError(str(exc)) from exc

    return wrapper


class ThreadProgress:
    """A progress callback for worker threads that sends MCP progress notifications.

    At most one notification per ``interval`` seconds (plus the last), so a 5,000-file
    ingest does not flood the client.
    """

    def __init__(self, ctx: Context, interval: float = 0.25):
        self._ctx = ctx
        self._interval = interval
        self._last = -interval

    def __call__(self, done: int, total: int, message: str) -> None:
        if done < total and not self.due():
            return
        self.send(done, total, message)

    def due(self) -> bool:
        """Whether ``interval`` has passed since the last notification."""
        return time.monotonic() - self._last >= self._interval

    def send(self, done: float, total: float | None, message: str) -> None:
        """Send one notification now (from a worker thread)."""
        self._last = time.monotonic()
        try:
            anyio.from_thread.run(self._ctx.report_progress, done, total, message)
        except Exception as exc:  # a client that went away must not stop the work
            log.debug("progress notification not sent: %s", exc)


class TokenStream:
    """Generated text as progress notifications: the pieces since the last one, every 50 ms."""

    def __init__(self, ctx: Context, max_tokens: int):
        self._progress = ThreadProgress(ctx, interval=0.05)
        self._max = max_tokens
        self._pending: list[str] = []
        self._tokens = 0
        self._lock = threading.Lock()

    def __call__(self, piece: str) -> None:
        with self._lock:
            self._pending.append(piece)
            self._tokens += 1
            if self._progress.due():
                self._flush()

    def finish(self) -> None:
        with self._lock:
            if self._pending:
                self._flush()

    def _flush(self) -> None:
        text, self._pending = "".join(self._pending), []
        self._progress.send(self._tokens, self._max, text)
