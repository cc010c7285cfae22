"""Indexed documents as MCP resources: ``doc://FOLDER/PATH``, listed page by page, read, watched.

``FOLDER`` is a watched folder's base name (``notes``, or ``notes-2`` for a second folder of
that name) and ``PATH`` the file's path inside it, URL-quoted. Reading one gives the text it
was indexed from, the same text ``get_document`` serves (for a PDF, all its pages). The SDK's high-level server lists
resources in one unpaged list and gives every read of a template the template's MIME type,
so ``resources/list`` and the ``doc://`` reads have their own handlers here; other URIs
(``job://``, ``adapter://``) go on to the SDK's.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    EmptyResult,
    ListResourcesResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    ReadResourceResult,
    Resource,
    SubscribeRequestParams,
    TextResourceContents,
    UnsubscribeRequestParams,
)

from llm_engineering.errors import UserError
from llm_engineering.index_store.query.documents import DocumentSlice, mime_type
from llm_engineering.index_store.service import IndexService
from llm_engineering.tools.common import app_of
from llm_engineering.tools.notifications import ResourceNotifier

__all__ = ["DOC_SCHEME", "DOC_TEMPLATE", "read_document", "register"]

DOC_SCHEME = "doc://"
DOC_TEMPLATE = "doc://{folder}/{+path}"
PAGE_SIZE = 100
MAX_CHARS = 10_000_000
"""A resource is the whole document; this only bounds a pathological one."""


def read_document(index: IndexService, uri: str) -> DocumentSlice:
    """The whole text of the document ``uri`` names.

    Raises:
        UserError: not a ``doc://`` URI, outside the watched folders, or not indexed.
    """
    folder, _, rel_path = uri.removeprefix(DOC_SCHEME).partition("/")
    if not uri.startswith(DOC_SCHEME) or not folder or not rel_path:
        raise UserError(f"{uri!r} is not a document URI: doc://FOLDER/PATH")
    path = str(index.path_for_uri(folder, rel_path))
    doc = index.get_document(path=path, max_chars=MAX_CHARS)
    if doc.total_pages is not None and doc.total_pages > 1:  # a PDF: every page, not the first
        doc = index.get_document(path=path, pages=f"1-{doc.total_pages}", max_chars=MAX_CHARS)
    return doc


async def list_resources(
    ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams
) -> ListResourcesResult:
    """``resources/list``: the indexed documents in path order, ``PAGE_SIZE`` at a time."""
    app = app_of(ctx)
    if app.index is None:
        return ListResourcesResult(resources=[])
    index = app.index
    try:
        page = await anyio.to_thread.run_sync(
            lambda: index.list_documents(status=["indexed"], limit=PAGE_SIZE, cursor=params.cursor)
        )
    except UserError as exc:  # a cursor that is not ours, or one from a changed listing
        raise MCPError(INVALID_PARAMS, str(exc)) from exc
    return ListResourcesResult(
        resources=[
            Resource(
                uri=doc.uri,
                name=doc.rel_path,
                title=doc.title,
                description=f"{doc.file_type} file {doc.path} ({doc.chunk_count} chunks indexed)",
                mime_type=mime_type(doc.file_type),
                size=doc.size,
            )
            for doc in page.documents
        ],
        next_cursor=page.next_cursor,
    )


def register(server: MCPServer, notifier: ResourceNotifier) -> None:
    """Register the ``doc://`` template and the list, read and subscribe handlers."""

    @server.resource(
        DOC_TEMPLATE,
        name="document",
        title="Indexed document",
        description="An indexed document's whole text as get_document serves it (a PDF's pages "
        "each headed '--- page N ---'). FOLDER is a watched folder's base name.",
        mime_type="text/plain",
    )
    async def document(folder: str, path: str, ctx: Context) -> str:
        # In-process reads only (ctx.read_resource); the wire read below keeps each MIME type.
        index = app_of(ctx).require_index()
        uri = index.document_uri(str(index.path_for_uri(folder, path)))
        return (await anyio.to_thread.run_sync(read_document, index, uri)).text

    # Private: MCPServer builds these handlers itself and has no public way to replace
    # (resources/list, resources/read) or add (resources/subscribe) one, nor a public accessor
    # to the lowlevel Server that has (the SDK's own in-memory transport reaches in the same
    # way, "TODO: Make `lowlevel_server` public"). tests/server/test_sdk_seams.py pins it.
    lowlevel = server._lowlevel_server  # pyright: ignore[reportPrivateUsage]
    sdk_read = lowlevel.get_request_handler("resources/read")
    assert sdk_read is not None

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: ReadResourceRequestParams
    ) -> Any:
        uri = str(params.uri)
        if not uri.startswith(DOC_SCHEME):
            return await sdk_read.handler(ctx, params)
        try:
            index = app_of(ctx).require_index()
            doc = await anyio.to_thread.run_sync(read_document, index, uri)
        except UserError as exc:
            raise MCPError(INVALID_PARAMS, str(exc), data={"uri": uri}) from exc
        return ReadResourceResult(
            contents=[TextResourceContents(uri=uri, text=doc.text, mime_type=doc.mime_type)]
        )

    async def subscribe(
        ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams
    ) -> EmptyResult:
        notifier.subscribe(ctx.session, str(params.uri))
        return EmptyResult()

    async def unsubscribe(
        ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        notifier.unsubscribe(ctx.session, str(params.uri))
        return EmptyResult()

    lowlevel.add_request_handler("resources/list", PaginatedRequestParams, list_resources)
    lowlevel.add_request_handler("resources/read", ReadResourceRequestParams, read_resource)
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)
