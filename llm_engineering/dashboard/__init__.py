"""The web dashboard: what is indexed and what failed, search, documents, training jobs
with a live loss chart, and adapters.

Server-rendered (Starlette + Jinja2) over the same services the MCP tools call, with two
vendored front-end pieces (htmx, uPlot) and no build step. ``llm-eng serve --http`` serves
it at ``/`` beside ``/mcp``; ``llm-eng dashboard`` serves it alone, reading the data folder
without ever taking the index's writer lock. :mod:`.security` holds its guard (Host and
Origin checks, the token, CSRF).
"""

from __future__ import annotations

from llm_engineering.config import Settings
from llm_engineering.dashboard import adapters, jobs, pages
from llm_engineering.dashboard.app import Dashboard, Lifespan

__all__ = ["Dashboard", "create_dashboard"]


def create_dashboard(
    settings: Settings, *, standalone: bool = False, lifespan: Lifespan | None = None
) -> Dashboard:
    """The dashboard with every page: overview, search, documents, jobs, adapters."""
    routes = [*pages.routes(), *jobs.routes(), *adapters.routes()]
    dashboard = Dashboard(settings, routes, standalone=standalone, lifespan=lifespan)
    dashboard.job_views = jobs.JobViews()
    return dashboard
