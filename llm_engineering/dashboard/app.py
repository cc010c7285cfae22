"""``Dashboard``: the Starlette app, its templates, and the services it shows.

The dashboard reads the same :class:`~llm_engineering.context.AppContext` the MCP
tools do (``serve --http`` attaches the one its lifespan opened; ``llm-eng dashboard``
opens its own, as a reader) and calls the services on it, never the tools. Pages are
rendered on the server by Jinja2 with autoescaping, so every path, reason and passage is
text, never markup.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from llm_engineering import __version__
from llm_engineering.config import Settings
from llm_engineering.context import AppContext
from llm_engineering.dashboard.security import Guard, GuardPolicy
from llm_engineering.errors import LlmEngError, PathError, UserError

__all__ = ["Dashboard", "Unavailable"]

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
T = TypeVar("T")
Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


class Unavailable(LlmEngError):
    """The services are not open (yet, or any more)."""


class Dashboard:
    """The web dashboard of one process.

    Args:
        settings: Host, port and token (the guard's rules), models and folders shown.
        pages: The routes of its pages (:func:`llm_engineering.dashboard.create_dashboard`
            gives them all).
        standalone: Served by ``llm-eng dashboard`` beside, not inside, an MCP server.
        lifespan: Opens and closes the services, when the dashboard is served alone.

    :attr:`app` is the ASGI application (the guard in front of the routes);
    :meth:`attach` hands it the services once they are open (and None when they close).
    """

    def __init__(
        self,
        settings: Settings,
        pages: Sequence[BaseRoute],
        *,
        standalone: bool = False,
        lifespan: Lifespan | None = None,
    ):
        self.settings = settings
        self.standalone = standalone
        self.context: AppContext | None = None
        self.job_views: Any = None
        """The jobs pages' cache of job views (:func:`~llm_engineering.dashboard.create_dashboard` sets it)."""
        self.started = time.time()
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(
            duration=duration, ago=ago, number=number, size=size, loss=loss, details=details,
            path=path_breaks,
        )  # fmt: skip
        # Compiled now, not on a page's first request: compiling all of them takes longer
        # (about 0.1-0.3 s here) than rendering the overview over 10,000 files.
        for name in self.templates.list_templates():
            self.templates.get_template(name)
        routes: list[BaseRoute] = [
            *pages,
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
        inner = Starlette(
            routes=routes,
            lifespan=lifespan,
            exception_handlers={
                LlmEngError: self._error,
                404: self._not_found,
            },
        )
        inner.state.dashboard = self
        self.policy = GuardPolicy.of(settings)
        self.guard = Guard(inner, self.policy)
        self.app = self.guard

    def attach(self, context: AppContext | None) -> None:
        """Show ``context``'s services (None: they are closing)."""
        self.context = context

    def require(self) -> AppContext:
        if self.context is None:
            raise Unavailable("the server is starting or stopping; try again in a moment")
        return self.context

    @property
    def url(self) -> str:
        host = self.settings.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.settings.port}/"

    # -- rendering -----------------------------------------------------------------------

    def render(
        self, request: Request, template: str, status_code: int = 200, **values: Any
    ) -> Response:
        return HTMLResponse(self.render_text(request, template, **values), status_code=status_code)

    def render_text(self, request: Request, template: str, **values: Any) -> str:
        context = self.context
        state = request.scope.get("state", {})
        return self.templates.get_template(template).render(
            request_path=request.url.path,
            csrf_token=state.get("csrf_token", ""),
            logged_in=state.get("session", False),
            token_required=state.get("token_required", False),
            read_only=context.read_only if context is not None else True,
            standalone=self.standalone,
            version=__version__,
            **values,
        )

    async def _error(self, request: Request, exc: Exception) -> Response:
        status = 503 if isinstance(exc, Unavailable) else 404 if isinstance(exc, PathError) else 400
        if not isinstance(exc, UserError | Unavailable):
            log.warning("dashboard request %s failed: %s", request.url.path, exc)
        if request.headers.get("hx-request"):
            return HTMLResponse(
                self.templates.get_template("_error.html").render(message=str(exc)),
                status_code=status,
            )
        return self.render(request, "error.html", status_code=status, message=str(exc))

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return self.render(request, "error.html", status_code=404, message="no such page")


async def in_thread(work: Callable[[], T]) -> T:
    """Run blocking service work (SQLite, models, files) off the event loop."""
    return await anyio.to_thread.run_sync(work)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def dashboard_of(request: Request) -> Dashboard:
    dashboard = request.app.state.dashboard
    assert isinstance(dashboard, Dashboard)
    return dashboard


# -- template filters ---------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, whole = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {whole} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def ago(timestamp: float | None) -> str:
    if not timestamp:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def number(value: float | None) -> str:
    return "–" if value is None else f"{value:,}"


def size(value: int | None) -> str:
    if value is None:
        return "–"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


def details(event: dict[str, Any]) -> str:
    """An event's fields but its time and name, as ``name=value`` pairs."""
    return "  ".join(
        f"{k}={v if isinstance(v, str) else json.dumps(v)}"
        for k, v in sorted(event.items())
        if k not in ("t", "event")
    )


def loss(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def path_breaks(path: object) -> Markup:
    """``path`` escaped, a line may break after each ``/`` (``<wbr>``), not inside a name."""
    return Markup("/<wbr>").join(escape(part) for part in str(path).split("/"))
