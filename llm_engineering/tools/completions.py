"""``completion/complete``: what a host offers while a person fills in a prompt or a URI.

Indexed paths for a ``path`` argument and for ``doc://{folder}/{+path}`` (whatever form is
typed: absolute, inside the folder, or led by the folder's name), adapter names for
``adapter`` and ``adapter://{name}``, job ids for ``job://{job_id}``; an empty list for
anything else (a free-text argument has nothing to suggest, which is not an error).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anyio.to_thread
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp_types import CompleteRequestParams, CompleteResult, Completion, PromptReference

from llm_engineering.context import AppContext
from llm_engineering.errors import UserError
from llm_engineering.tools.common import app_of
from llm_engineering.tools.resources import DOC_TEMPLATE

__all__ = ["MAX_VALUES", "register"]

MAX_VALUES = 100
"""The spec's limit on values in one completion."""
JOB_TEMPLATE = "job://{job_id}"
ADAPTER_TEMPLATE = "adapter://{name}"
_SCAN = 2000
_PAGE = 500


def _matching(candidates: Iterable[str], typed: str) -> Completion:
    """Candidates starting with ``typed`` first, then those containing it (case-insensitive)."""
    return _ranked(((c, (c,), c) for c in candidates), typed)


def _ranked(candidates: Iterable[tuple[str, tuple[str, ...], str]], typed: str) -> Completion:
    """Values with a form that starts with ``typed`` first, then those whose name contains it
    (case-insensitive); a candidate is (value, the forms a person may type it in, its name)."""
    needle = typed.casefold()
    first: dict[str, None] = {}
    then: dict[str, None] = {}
    for value, forms, name in candidates:
        if any(form.casefold().startswith(needle) for form in forms):
            first[value] = None
        elif needle in name.casefold():
            then[value] = None
    values = list(first) + [v for v in then if v not in first]
    return Completion(
        values=values[:MAX_VALUES], total=len(values), has_more=len(values) > MAX_VALUES
    )


def _paths(app: AppContext, typed: str, relative: bool, folder: str | None = None) -> Completion:
    """Indexed documents (in the ``doc://`` folder ``folder``, if given) matching ``typed``
    in any form a person writes one: absolute, inside its folder, or led by its folder's name
    (``docs/guide/setup.md``). The value is the form the argument takes: the path inside the
    folder for a ``doc://`` URI, else the absolute path (as search hits and listings give it)."""
    documents = _indexed(app)
    candidates = []
    for doc in documents:
        name = doc.uri.removeprefix("doc://").partition("/")[0]
        if folder is not None and name != folder:
            continue
        value = doc.rel_path if relative else doc.path
        forms = (doc.path, doc.rel_path, f"{name}/{doc.rel_path}")
        candidates.append((value, forms, doc.rel_path))
    return _ranked(candidates, typed)


def _indexed(app: AppContext) -> list[Any]:
    """The indexed documents (the first ``_SCAN`` of them, in path order)."""
    if app.index is None:
        return []
    documents: list[Any] = []
    cursor: str | None = None
    while len(documents) < _SCAN:
        page = app.index.list_documents(status=["indexed"], limit=_PAGE, cursor=cursor)
        documents += page.documents
        cursor = page.next_cursor
        if cursor is None:
            break
    return documents


def _folders(app: AppContext) -> list[str]:
    """The ``doc://`` names of the folders documents are read from (watched, or ingested)."""
    if app.index is None:
        return []
    index = app.index
    uris = (index.document_uri(str(folder / "_")) for folder in index.documents.folders())
    return [uri.removeprefix("doc://").partition("/")[0] for uri in uris]


def _adapters(app: AppContext) -> list[str]:
    return [card.name for card in app.training.adapters()] if app.training else []


def _jobs(app: AppContext) -> list[str]:
    return [view.job.id for view in app.training.jobs(limit=_SCAN)] if app.training else []


def suggestions(app: AppContext, params: CompleteRequestParams) -> Completion:
    """The completion for one argument (blocking: call it from a worker thread)."""
    ref, name, typed = params.ref, params.argument.name, params.argument.value
    given = (params.context.arguments if params.context else None) or {}
    if isinstance(ref, PromptReference):
        if name == "path":
            return _paths(app, typed, relative=False)
        if name == "adapter":
            return _matching(_adapters(app), typed)
    elif ref.uri == DOC_TEMPLATE:
        if name == "folder":
            return _matching(_folders(app), typed)
        if name == "path":
            return _paths(app, typed, relative=True, folder=given.get("folder"))
    elif ref.uri == ADAPTER_TEMPLATE and name == "name":
        return _matching(_adapters(app), typed)
    elif ref.uri == JOB_TEMPLATE and name == "job_id":
        return _matching(_jobs(app), typed)
    return Completion(values=[])


def register(server: MCPServer) -> None:
    async def complete(
        ctx: ServerRequestContext[Any, Any], params: CompleteRequestParams
    ) -> CompleteResult:
        try:
            completion = await anyio.to_thread.run_sync(suggestions, app_of(ctx), params)
        except UserError:  # the index or training is unavailable: nothing to suggest
            completion = Completion(values=[])
        return CompleteResult(completion=completion)

    # Private: MCPServer.completion() hands its handler no request context, so no lifespan
    # state to complete from; the lowlevel Server's registration does, and MCPServer has no
    # public accessor to it (see tools/resources.py). tests/server/test_sdk_seams.py pins it.
    lowlevel = server._lowlevel_server  # pyright: ignore[reportPrivateUsage]
    lowlevel.add_request_handler("completion/complete", CompleteRequestParams, complete)
