"""``get_document`` and ``list_documents``: reading what a search found, and what is there."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from llm_engineering.index_store.query.listing import MAX_LIMIT, DocumentInfo, parse_time
from llm_engineering.tools.common import app_of, tool_hints, user_errors

__all__ = ["DocumentList", "DocumentText", "register"]


class DocumentText(BaseModel):
    path: str = Field(description="Absolute path of the file.")
    rel_path: str = Field(description="Path inside its watched folder.")
    uri: str = Field(description="The document's doc:// resource URI.")
    title: str
    file_type: str = Field(description="File extension: md, pdf, py, ...")
    mime_type: str = Field(description="What text is: text/markdown for structured formats.")
    text: str = Field(description="The slice asked for, as it was indexed.")
    start_line: int | None = Field(description="First line in text (within page for a PDF).")
    end_line: int | None = Field(description="Last line in text (within page for a PDF).")
    total_lines: int | None = Field(description="Lines in the document (in page, for a PDF).")
    page: int | None = Field(None, description="First PDF page in text.")
    end_page: int | None = Field(None, description="Last PDF page in text.")
    total_pages: int | None = Field(None, description="Pages of the PDF (with text).")
    truncated: bool = Field(description="True when max_chars cut the slice short.")
    next_start_line: int | None = Field(
        None, description="Continue from this line (with next_page for a PDF); null at the end."
    )
    next_page: int | None = Field(None, description="Continue from this PDF page.")
    chunk_start_line: int | None = Field(None, description="Where the chunk_id's text starts.")
    chunk_end_line: int | None = Field(None, description="Where the chunk_id's text ends.")
    chunk_page: int | None = Field(None, description="The chunk_id's PDF page.")
    notes: list[str] = Field(default_factory=list)


class DocumentEntry(BaseModel):
    path: str
    rel_path: str
    uri: str
    title: str
    file_type: str
    size: int = Field(description="Bytes.")
    modified: float = Field(description="Last modified, seconds since the epoch.")
    chunk_count: int
    status: Literal["indexed", "pending", "failed"]
    error: str | None = Field(None, description="Why a failed file could not be indexed.")

    @classmethod
    def of(cls, info: DocumentInfo) -> DocumentEntry:
        return cls(**info.__dict__)


class DocumentList(BaseModel):
    documents: list[DocumentEntry]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null = last.")
    totals: dict[str, int] = Field(description="Files per status under the filters, all pages.")


@user_errors
async def get_document(
    ctx: Context,
    path: Annotated[
        str | None,
        Field(description="The file: absolute, or relative to the (first) watched folder."),
    ] = None,
    chunk_id: Annotated[
        str | None, Field(description="A search hit's chunk_id: opens its document there.")
    ] = None,
    start_line: Annotated[int | None, Field(ge=1, description="First line (1-based).")] = None,
    end_line: Annotated[int | None, Field(ge=1, description="Last line (inclusive).")] = None,
    page: Annotated[int | None, Field(ge=1, description="PDF page to read.")] = None,
    pages: Annotated[
        str | None, Field(description="PDF pages to read, N or N-M (e.g. 3-5).")
    ] = None,
    around: Annotated[
        int | None,
        Field(ge=0, le=2000, description="With chunk_id: lines on each side of it (default 10)."),
    ] = None,
    max_chars: Annotated[
        int, Field(ge=100, le=200_000, description="Most characters of text to return.")
    ] = 20_000,
) -> DocumentText:
    """Read an indexed document (or the part of it around a search hit): text as indexed, by lines or PDF pages, with where to continue."""
    index = app_of(ctx).require_index()
    result = await anyio.to_thread.run_sync(
        lambda: index.get_document(
            path=path,
            chunk_id=chunk_id,
            start_line=start_line,
            end_line=end_line,
            page=page,
            pages=pages,
            around=around,
            max_chars=max_chars,
        )
    )
    return DocumentText(**result.__dict__)


@user_errors
async def list_documents(
    ctx: Context,
    path_prefix: Annotated[
        str | None,
        Field(description="Only paths starting with this (absolute, or inside a watched folder)."),
    ] = None,
    file_types: Annotated[
        list[str] | None, Field(description="Only these file types, e.g. ['md', 'pdf'].")
    ] = None,
    status: Annotated[
        list[Literal["indexed", "pending", "failed"]] | None,
        Field(description="Only files in these states (default all)."),
    ] = None,
    modified_after: Annotated[
        str | None, Field(description="Only files modified after this (ISO 8601 or epoch s).")
    ] = None,
    sort: Annotated[
        Literal["path", "modified"], Field(description="path (A-Z) or modified (newest first).")
    ] = "path",
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Files per page.")] = 50,
    cursor: Annotated[str | None, Field(description="next_cursor from the previous page.")] = None,
) -> DocumentList:
    """List the indexed, pending and failed files (with size, modified time, chunks and failure reasons), filtered, sorted and paged."""
    app = app_of(ctx)
    index = app.require_index()
    after = parse_time(modified_after) if modified_after else None
    queued = app.queued_paths()
    page = await anyio.to_thread.run_sync(
        lambda: index.list_documents(
            pending=queued,
            path_prefix=path_prefix,
            file_types=file_types,
            status=status,
            modified_after=after,
            sort=sort,
            limit=limit,
            cursor=cursor,
        )
    )
    return DocumentList(
        documents=[DocumentEntry.of(d) for d in page.documents],
        next_cursor=page.next_cursor,
        totals=page.totals,
    )


def register(server: MCPServer) -> None:
    server.add_tool(get_document, annotations=tool_hints("Read a document", read_only=True))
    server.add_tool(list_documents, annotations=tool_hints("List documents", read_only=True))
