"""``llm-eng dashboard``: the dashboard alone, for people whose assistant runs the server
over stdio. It opens the data folder as a reader: it never takes the index's writer lock
(the MCP server keeps indexing), and it runs no training jobs (it queues them for the
server, or ``llm-eng train``, to run)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.applications import Starlette

from llm_engineering.config import Settings
from llm_engineering.context import AppContext
from llm_engineering.dashboard import Dashboard, create_dashboard
from llm_engineering.errors import ConfigError

__all__ = ["build_standalone", "run_standalone"]


def build_standalone(settings: Settings) -> Dashboard:
    """The dashboard with a lifespan that opens the services as a reader.

    Raises:
        ConfigError: a non-loopback bind without a token.
    """
    if not settings.host_is_loopback and not settings.token:
        raise ConfigError(
            f"refusing to serve the dashboard on {settings.host} without a token: anyone who can "
            "reach it could read your documents. Set --token (or LLM_ENG_TOKEN), or bind to 127.0.0.1."
        )
    dashboard: Dashboard

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        app = await anyio.to_thread.run_sync(AppContext.open, settings, "reader")
        dashboard.attach(app)
        try:
            yield
        finally:
            dashboard.attach(None)
            await anyio.to_thread.run_sync(app.close)

    dashboard = create_dashboard(settings, standalone=True, lifespan=lifespan)
    return dashboard


def run_standalone(dashboard: Dashboard) -> None:
    """Serve ``dashboard`` until interrupted."""
    import uvicorn

    settings = dashboard.settings
    uvicorn.run(dashboard.app, host=settings.host, port=settings.port, log_level="warning")
