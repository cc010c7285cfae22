"""``create_server``: the MCP server, its lifespan, and the tools it registers."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio.to_thread
from mcp.server.mcpserver import MCPServer

from llm_engineering import __version__
from llm_engineering.config import Settings
from llm_engineering.errors import LlmEngError, UserError
from llm_engineering.index_store.service import IndexService
from llm_engineering.tools import ingest as ingest_tools
from llm_engineering.tools import search as search_tools

__all__ = ["AppContext", "create_server"]

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "llm-engineering searches the user's own documents (the folders it indexes). "
    "Use search_docs to find passages (hybrid semantic + keyword search, with source paths and lines/pages); "
    "index_status says what is indexed, what is still pending and which files failed and why."
)


@dataclass
class AppContext:
    """What the lifespan opens once and every tool reads."""

    settings: Settings
    read_only: bool
    index: IndexService | None = None
    index_error: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def require_index(self) -> IndexService:
        """The index, or a UserError saying why it is not available."""
        if self.index is None:
            raise UserError(f"the index is not available: {self.index_error or 'still opening'}")
        return self.index

    def require_writable_index(self) -> IndexService:
        if self.read_only:
            raise UserError(
                "this server was started read-only (--read-only); it does not write to the index"
            )
        return self.require_index()


def _background_start(app: AppContext) -> None:
    """Load the embedding model and index the watched folders, off the request path."""
    index = app.index
    if index is None:
        return
    try:
        index.embedder()
        if app.settings.watch and not app.read_only and not app.stop.is_set():
            missing = [str(p) for p in app.settings.watch if not p.is_dir()]
            for path in missing:
                log.error("watched folder %s does not exist or is not a folder; skipping it", path)
            folders = [p for p in app.settings.watch if p.is_dir()]
            if folders:
                report = index.ingest(folders, stop=app.stop)
                log.info(
                    "indexed watched folders: %d added, %d updated, %d unchanged, %d removed, %d failed",
                    report.added, report.updated, report.unchanged, report.removed, len(report.failed),
                )  # fmt: skip
    except LlmEngError as exc:
        app.index_error = str(exc)
        log.error("%s", exc)
    except Exception:
        log.exception("background indexing failed")


def create_server(settings: Settings, *, read_only: bool = False) -> MCPServer:
    """Build the MCP server. Write tools are registered only when ``read_only`` is false.

    The lifespan opens the index once; the embedding model loads and the watched folders
    are indexed in a background thread, so the server answers at once.
    """

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[AppContext]:
        app = AppContext(settings=settings, read_only=read_only)
        try:
            app.index = await anyio.to_thread.run_sync(IndexService, settings)
        except LlmEngError as exc:
            app.index_error = str(exc)
            log.error("cannot open the index: %s", exc)
        worker = threading.Thread(
            target=_background_start, args=(app,), name="llm-eng-start", daemon=True
        )
        worker.start()
        try:
            yield app
        finally:
            app.stop.set()
            await anyio.to_thread.run_sync(lambda: worker.join(timeout=10))
            if app.index is not None:
                app.index.close()

    server = MCPServer(
        "llm-engineering",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,
    )
    search_tools.register(server)
    if not read_only:
        ingest_tools.register(server)
    return server
