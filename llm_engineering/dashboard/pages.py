"""The index's pages: overview (live), search, documents, and logging in and out."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from llm_engineering.context import AppContext
from llm_engineering.dashboard.app import Dashboard, dashboard_of, in_thread, see_other
from llm_engineering.dashboard.highlight import highlight
from llm_engineering.dashboard.security import safe_next
from llm_engineering.errors import UserError
from llm_engineering.index_store.query.search import SEARCH_MODES

__all__ = ["routes"]

FAILED_SHOWN = 50
RECENT_SHOWN = 8
OVERVIEW_TICK_S = 0.5


def routes() -> list[BaseRoute]:
    return [
        Route("/", overview),
        Route("/overview/stream", overview_stream),
        Route("/documents/retry", retry, methods=["POST"]),
        Route("/search", search),
        Route("/documents", documents),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


# -- overview ------------------------------------------------------------------------------


def overview_values(dashboard: Dashboard) -> dict[str, Any]:
    """What the overview shows, read from the services (blocking: call in a thread)."""
    app = dashboard.require()
    settings = app.settings
    values: dict[str, Any] = {
        "settings": settings,
        "index_error": app.index_error,
        "status": None,
        "recent": [],
        "failed_more": 0,
        "can_retry": False,
    }
    if app.index is None:
        return values
    status = app.status()
    values["status"] = status
    values["failed_more"] = max(0, len(status.failed) - FAILED_SHOWN)
    values["failed"] = status.failed[:FAILED_SHOWN]
    values["can_retry"] = status.role == "writer"
    done = status.documents + len(status.failed)
    values["progress"] = (done, done + status.pending)
    # Straight from the ledger, latest indexed first (a file's own time can be years old: one
    # copied or unpacked keeps it), so each file a run adds shows at once.
    values["recent"] = app.index.ledger.list_files(
        "status = 'indexed'", [], "updated_at DESC", RECENT_SHOWN
    )
    return values


async def overview(request: Request) -> Response:
    dashboard = dashboard_of(request)
    values = await in_thread(lambda: overview_values(dashboard))
    return dashboard.render(request, "overview.html", **values)


async def overview_stream(request: Request) -> Response:
    """Server-sent events: the overview's live part, rendered again whenever it changes."""
    dashboard = dashboard_of(request)
    dashboard.require()

    async def changes() -> AsyncIterator[dict[str, str]]:
        sent = ""
        while True:
            values = await in_thread(lambda: overview_values(dashboard))
            html = dashboard.render_text(request, "_overview_live.html", **values)
            digest = hashlib.sha256(html.encode()).hexdigest()
            if digest != sent:
                sent = digest
                yield {"event": "overview", "data": html}
            await anyio.sleep(OVERVIEW_TICK_S)

    return EventSourceResponse(changes(), ping=15)


async def retry(request: Request) -> Response:
    """Index one failed file again (the writer only); back to the overview, or the new row."""
    dashboard = dashboard_of(request)
    app = dashboard.require()
    form = await request.form()
    path = str(form.get("path", ""))
    index = app.require_writable_index()
    target = index.inside_watched(path)
    if not index.is_writer:  # and never becomes one: ingest() would take the writer lock
        holder = index.writer_pid
        raise UserError(
            "this process only reads the index; the server that writes it "
            f"{f'(pid {holder}) ' if holder else ''}indexes the file again when it changes"
        )
    report = await in_thread(lambda: index.ingest([target]))
    failed = next((f for f in report.failed if f.path == str(target)), None)
    if request.headers.get("hx-request"):
        return dashboard.render(
            request, "_retried.html", path=str(target), failed=failed, can_retry=True
        )
    return see_other("/")


# -- search --------------------------------------------------------------------------------


async def search(request: Request) -> Response:
    dashboard = dashboard_of(request)
    app = dashboard.require()
    params = request.query_params
    query = params.get("q", "").strip()
    mode = params.get("mode", "hybrid")
    if mode not in SEARCH_MODES:
        raise UserError(f"mode must be one of {', '.join(SEARCH_MODES)}")
    rerank = params.get("rerank") in ("1", "on", "true")
    path_prefix = params.get("path_prefix", "").strip() or None
    file_types = [t for t in params.get("file_types", "").replace(",", " ").split() if t]
    top_k = _int(params.get("top_k"), 10, 1, 50)
    values: dict[str, Any] = {
        "query": query,
        "mode": mode,
        "modes": SEARCH_MODES,
        "rerank": rerank,
        "path_prefix": path_prefix or "",
        "file_types": " ".join(file_types),
        "top_k": top_k,
        "hits": None,
        "under_way": None,
    }
    if query:
        index = app.require_index()
        values["under_way"] = (await in_thread(app.status)).under_way()
        hits, took_ms = await in_thread(
            lambda: index.search(
                query,
                top_k=top_k,
                mode=mode,  # type: ignore[arg-type]  # checked above
                path_prefix=path_prefix,
                file_types=file_types or None,
                rerank=rerank,
            )
        )
        values["hits"] = [(hit, highlight(hit.text, query)) for hit in hits]
        values["took_ms"] = took_ms
        values["reranker"] = hits[0].reranker if hits else None
    return dashboard.render(request, "search.html", **values)


# -- documents -----------------------------------------------------------------------------


async def documents(request: Request) -> Response:
    """One document's text (``path`` or ``chunk``), or the listing of them all."""
    dashboard = dashboard_of(request)
    app = dashboard.require()
    params = request.query_params
    if params.get("path") or params.get("chunk"):
        return await _document(request, dashboard, app)
    index = app.require_index()
    status = params.get("status") or None
    sort = params.get("sort", "path")
    filters: dict[str, Any] = {
        "path_prefix": params.get("path_prefix", "").strip() or None,
        "file_types": [t for t in params.get("file_types", "").replace(",", " ").split() if t]
        or None,
        "status": [status] if status else None,
        "sort": sort,
        "limit": _int(params.get("limit"), 100, 1, 500),
        "cursor": params.get("cursor") or None,
    }
    queued = app.queued_paths()
    page = await in_thread(lambda: index.list_documents(pending=queued, **filters))
    return dashboard.render(
        request,
        "documents.html",
        page=page,
        status_filter=status or "",
        sort=sort,
        path_prefix=filters["path_prefix"] or "",
        file_types=" ".join(filters["file_types"] or []),
    )


async def _document(request: Request, dashboard: Dashboard, app: AppContext) -> Response:
    params = request.query_params
    index = app.require_index()
    chunk = params.get("chunk") or None
    request_args: dict[str, Any] = {
        "path": None if chunk else params.get("path"),
        "chunk_id": chunk,
        "start_line": _int(params.get("start_line"), None, 1, None),
        "end_line": _int(params.get("end_line"), None, 1, None),
        "page": _int(params.get("page"), None, 1, None),
        "around": _int(params.get("around"), 30 if chunk else None, 0, 10_000),
        "max_chars": 200_000,
    }
    piece = await in_thread(lambda: index.get_document(**request_args))
    first = piece.start_line or 1
    lines = piece.text.split("\n") if piece.text else []
    marked = range(piece.chunk_start_line or 0, (piece.chunk_end_line or -1) + 1)
    numbered = [(first + i, line, (first + i) in marked) for i, line in enumerate(lines)]
    return dashboard.render(request, "document.html", doc=piece, lines=numbered, query=params)


# -- logging in ----------------------------------------------------------------------------


async def login(request: Request) -> Response:
    dashboard = dashboard_of(request)
    guard = dashboard.guard
    if not guard.policy.token:
        return see_other("/")
    if request.method == "GET":
        return dashboard.render(request, "login.html", next=request.query_params.get("next", "/"))
    form = await request.form()
    target = safe_next(str(form.get("next", "/")))
    if not await guard.try_token(request.scope, str(form.get("token", "")), "login token"):
        return dashboard.render(
            request, "login.html", status_code=401, next=target, error="wrong token"
        )
    response = see_other(target)
    response.set_cookie(
        guard.policy.session_cookie,
        guard.session_cookie_value(),
        max_age=30 * 24 * 3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    dashboard = dashboard_of(request)
    response = see_other("/login")
    response.delete_cookie(dashboard.guard.policy.session_cookie, path="/")
    return response


def _int(value: str | None, default: Any, low: int, high: int | None) -> Any:
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise UserError(f"{value!r} is not a whole number") from None
    if number < low or (high is not None and number > high):
        raise UserError(f"{number} is out of range ({low}..{high or 'any'})")
    return number
