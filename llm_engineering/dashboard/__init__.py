"""The web dashboard: what is indexed and what failed, search, documents, training jobs
with a live loss chart, and adapters.

Server-rendered (Starlette + Jinja2) over the same services the MCP tools call, with two
vendored front-end pieces (htmx, uPlot) and no build step. ``llm-eng serve --http`` serves
it at ``/`` beside ``/mcp``; ``llm-eng dashboard`` serves it alone, reading the data folder
without ever taking the index's writer lock. :mod:`.security` holds its guard (Host and
Origin checks, the token, CSRF).
"""

from llm_engineering.dashboard.app import Dashboard

__all__ = ["Dashboard"]
