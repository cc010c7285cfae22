"""``create_server``: the MCP server, its lifespan, and the tools it registers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus

from llm_engineering import __version__
from llm_engineering.config import Settings
from llm_engineering.context import AppContext, Role
from llm_engineering.local.server import LocalServer
from llm_engineering.tools import adapters as adapter_tools
from llm_engineering.tools import answer as answer_tools
from llm_engineering.tools import completions as completion_tools
from llm_engineering.tools import documents as document_tools
from llm_engineering.tools import ingest as ingest_tools
from llm_engineering.tools import prompts as prompt_tools
from llm_engineering.tools import rerank as rerank_tools
from llm_engineering.tools import resources as resource_tools
from llm_engineering.tools import search as search_tools
from llm_engineering.tools import train as train_tools
from llm_engineering.tools import tuning as tuning_tools
from llm_engineering.tools.arguments import checked_tool_arguments
from llm_engineering.tools.notifications import ResourceNotifier

__all__ = ["create_server"]

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "llm-engineering searches the user's own documents (the folders it indexes and watches). "
    "Use search_docs to find passages (hybrid semantic + keyword search, with source paths and "
    "lines/pages; rerank=true for a more careful order); get_document reads a hit's document "
    "around it (by chunk_id) or any indexed file by lines or PDF pages; list_documents lists "
    "what is indexed, pending or failed; answer_with_context answers a question "
    "from them with a local model and cites the passages; rerank orders passages you already have; "
    "index_status says what is indexed, what is still pending and which files "
    "failed and why. start_qlora_job fine-tunes the local model on the user's examples in the "
    "background (follow it with get_job); a finished adapter answers via "
    "answer_with_context(adapter=NAME). Every indexed document is also a resource, "
    "doc://FOLDER/PATH (resources/list, resources/read; subscribe to hear when it changes)."
)


def create_server(
    settings: Settings,
    *,
    read_only: bool = False,
    watch: bool = True,
    on_open: Callable[[AppContext | None], None] | None = None,
) -> MCPServer:
    """Build the MCP server. Write tools are registered only when ``read_only`` is false.

    The lifespan opens the index once; the embedding model loads, the watched folders are
    reconciled and then watched in a background thread, so the server answers at once.
    With ``watch=False`` the folders are reconciled at start but not watched. ``on_open``
    is handed the opened services, and None before they close (the web dashboard's hook).
    """
    bus = InMemorySubscriptionBus()
    notifier = ResourceNotifier(bus)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[AppContext]:
        role: Role = "read-only" if read_only else "server"
        app = await anyio.to_thread.run_sync(lambda: AppContext.open(settings, role, watch=watch))
        local = LocalServer(app)
        async with anyio.create_task_group() as notifying:
            await notifying.start(notifier.run)
            try:
                if app.index is not None:  # before the indexer starts: it tells of changes
                    notifier.follow(app.index)
                await anyio.to_thread.run_sync(app.start)
                try:  # the command line's door; the MCP server serves without it
                    local.start()
                except OSError as exc:
                    log.warning("the command line cannot reach this server: %s", exc)
                if on_open is not None:
                    on_open(app)
                yield app
            finally:
                if on_open is not None:
                    on_open(None)
                local.close()
                await anyio.to_thread.run_sync(app.close)
                notifying.cancel_scope.cancel()

    server = MCPServer(
        "llm-engineering",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,
        subscriptions=bus,
    )
    _announce_resource_changes(server, notifier)
    search_tools.register(server)
    document_tools.register(server)
    rerank_tools.register(server)
    answer_tools.register(server)
    train_tools.register(server, read_only)
    tuning_tools.register(server, read_only)
    adapter_tools.register(server, read_only)
    if not read_only:
        ingest_tools.register(server)
    resource_tools.register(server, notifier)
    prompt_tools.register(server, read_only)
    completion_tools.register(server)
    server.middleware.append(checked_tool_arguments(server))
    return server


def _announce_resource_changes(server: MCPServer, notifier: ResourceNotifier) -> None:
    """Declare ``resources.listChanged`` to handshake-era clients and know who they are.

    The 2026-07-28 era derives it from ``subscriptions/listen`` being served; the handshake
    era reads it from the NotificationOptions that ``initialize`` is built with, which the
    SDK's transports create with their defaults (all off) and MCPServer offers no way to set.
    So the flag is set on the ``initialize`` result as it passes the (public) middleware chain.
    """

    async def announce(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method == "initialize" and isinstance(result, dict):
            # The spec's InitializeResult in wire form (tests/server/test_sdk_seams.py pins it).
            resources = result.get("capabilities", {}).get("resources")
            if isinstance(resources, dict):
                resources["listChanged"] = True
        elif ctx.method == "notifications/initialized":
            notifier.connected(ctx.session)
        return result

    server.middleware.append(announce)
