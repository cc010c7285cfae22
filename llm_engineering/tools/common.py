"""What every tool module shares: the app context, error mapping, progress from threads."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.from_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from llm_engineering.errors import LlmEngError, UserError

__all__ = ["ThreadProgress", "app_of", "user_errors"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def app_of(ctx: Context) -> Any:
    """The :class:`~llm_engineering.server.app.AppContext` opened by the lifespan."""
    return ctx.request_context.lifespan_context


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
        self._last = 0.0

    def __call__(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if done < total and now - self._last < self._interval:
            return
        self._last = now
        try:
            anyio.from_thread.run(self._ctx.report_progress, done, total, message)
        except Exception as exc:  # a client that went away must not stop the work
            log.debug("progress notification not sent: %s", exc)
