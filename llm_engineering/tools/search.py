"""``search_docs`` and ``index_status``: searching the indexed folders, and what is in them."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, ContentBlock, ResourceLink, TextContent
from pydantic import BaseModel, Field

from llm_engineering.errors import UserError
from llm_engineering.tools.common import app_of, tool_hints, user_errors
from llm_engineering.tools.ingest import FailedFileInfo, IngestSummary

__all__ = ["IndexStatusResult", "SearchDocsResult", "register"]

MAX_TOP_K = 50


class SearchHit(BaseModel):
    chunk_id: str = Field(description="Stable id of the chunk.")
    path: str = Field(description="Absolute path of the source file.")
    rel_path: str = Field(description="Path relative to the indexed folder.")
    uri: str = Field(
        description="The document's resource URI (doc://FOLDER/PATH): read it for the whole text."
    )
    title: str = Field(description="Document title.")
    heading: str = Field(description="Heading path of the chunk inside the document.")
    text: str = Field(description="The chunk's text.")
    score: float = Field(
        description="Relevance: fused reciprocal-rank score (hybrid), cosine similarity (dense) or BM25 (keyword)."
    )
    file_type: str = Field(description="File extension, e.g. md, pdf, py.")
    page: int | None = Field(None, description="PDF page (1-based), when the source is a PDF.")
    start_line: int | None = Field(
        None,
        description="First line of the chunk in the text get_document serves: the file's own "
        "lines (text, Markdown, reST, code), the extracted text's (HTML, DOCX), the page's (PDF).",
    )
    end_line: int | None = Field(None, description="Last line of the chunk, counted as start_line.")
    retrieved_by: list[str] = Field(description="Which retrievers found it: dense, keyword.")
    reranker: str | None = Field(
        None, description="The reranker that scored it, when rerank was asked for."
    )


class IndexCounts(BaseModel):
    documents: int = Field(description="Files indexed.")
    pending: int = Field(
        description="Files still waiting to be indexed; results may be incomplete while > 0."
    )
    building: bool = Field(
        False,
        description="True while indexing is under way (the first build after a start, or "
        "changes being indexed): results come from the files indexed so far, so an empty or "
        "short list does not mean the documents lack it. Search again once it is false.",
    )
    note: str | None = Field(
        None,
        description="While building: how far indexing is, e.g. 'indexing is under way: 12 of "
        "150 files done'.",
    )


class SearchDocsResult(BaseModel):
    results: list[SearchHit]
    took_ms: float = Field(description="Search time in milliseconds.")
    mode: str = Field(description="Retrieval mode used.")
    reranker: str | None = Field(None, description="The reranker that ordered the results, if any.")
    index: IndexCounts


class ModelInfo(BaseModel):
    embedding_model: str = Field(
        description="The embedding model searches use: the configured one, or 'tuned vN (PATH)' "
        "once start_retrieval_tuning switched to a model tuned on this corpus."
    )
    embedding_dimension: int | None
    embedding_loaded: bool
    embeddings: str = Field(
        description="Where documents and queries are embedded: 'in process (DEVICE)' or 'server URL'."
    )
    reranking: str = Field(
        description="Where rerank and search_docs(rerank=true) run: 'in process (RERANKER)' or 'server URL (RERANKER)'."
    )


class IndexStatusResult(BaseModel):
    documents: int = Field(description="Files indexed.")
    chunks: int = Field(description="Chunks searchable.")
    pending: int = Field(description="Files waiting to be indexed.")
    indexing: str | None = Field(None, description="The file being indexed now, if any.")
    failed: list[FailedFileInfo] = Field(
        description="Files that could not be indexed, with the reason."
    )
    watched: list[str] = Field(description="Folders indexed at start.")
    data_dir: str
    vector_store: str
    models: ModelInfo
    read_only: bool = Field(description="True when this server does not write to the index.")
    role: str = Field(
        description="writer (indexes and watches the folders), reader (another llm-eng process writes; "
        "this one takes over when it exits) or read-only."
    )
    writer_pid: int | None = Field(None, description="Process id of the writing llm-eng process.")
    watching: bool = Field(
        description="True when changes in the watched folders are picked up live."
    )
    watch_problems: list[str] = Field(
        default_factory=list,
        description="Why a watched folder or subfolder is not watched now (deleted, moved away, "
        "unreadable); each is watched and indexed again once it is back.",
    )
    building: bool = Field(
        False,
        description="True while indexing is under way: searches may miss files not reached yet.",
    )
    error: str | None = Field(
        None,
        description="Why background indexing stopped or waits (e.g. no space left on the data "
        "folder's disk: it resumes by itself once space is freed), if it does.",
    )
    last_ingest: IngestSummary | None = Field(
        None, description="Counts from the most recent ingest."
    )


@user_errors
async def search_docs(
    ctx: Context,
    query: Annotated[str, Field(description="What to look for, in natural language or keywords.")],
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, description="How many results to return.")] = 5,
    mode: Annotated[
        Literal["hybrid", "dense", "keyword"],
        Field(
            description="hybrid = dense + BM25 fused (best default); dense = semantic; keyword = BM25."
        ),
    ] = "hybrid",
    path_prefix: Annotated[
        str | None,
        Field(
            description="Only files whose path starts with this (absolute, or relative to the indexed folder)."
        ),
    ] = None,
    file_types: Annotated[
        list[str] | None, Field(description="Only these file types, e.g. ['md', 'pdf'].")
    ] = None,
    rerank: Annotated[
        bool,
        Field(
            description="Rerank a larger candidate pool before cutting to top_k: better order, a little slower."
        ),
    ] = False,
) -> Annotated[CallToolResult, SearchDocsResult]:
    """Search the user's indexed documents and return the most relevant passages with their source files."""
    if not query.strip():
        raise UserError("query is empty: pass the words or question to search for")
    app = app_of(ctx)
    index = app.require_index()
    hits, took_ms = await anyio.to_thread.run_sync(
        lambda: index.search(
            query,
            top_k=top_k,
            mode=mode,
            path_prefix=path_prefix,
            file_types=file_types,
            rerank=rerank,
        )
    )
    status = app.status()
    result = SearchDocsResult(
        results=[SearchHit(**hit.__dict__, uri=index.document_uri(hit.path)) for hit in hits],
        took_ms=round(took_ms, 2),
        mode=mode,
        reranker=hits[0].reranker if hits else None,
        index=IndexCounts(
            documents=status.documents,
            pending=status.pending,
            building=status.under_way() is not None,
            note=status.under_way(),
        ),
    )
    content: list[ContentBlock] = [TextContent(text=result.model_dump_json(indent=2))]
    return CallToolResult(
        content=content + resource_links(result.results),
        structured_content=result.model_dump(mode="json"),
    )


def resource_links(hits: list[SearchHit]) -> list[ContentBlock]:
    """One link per document among ``hits``, best first, so a host can open or attach it."""
    links: dict[str, ContentBlock] = {}
    for hit in hits:
        if hit.uri not in links:
            links[hit.uri] = ResourceLink(
                uri=hit.uri,
                name=hit.rel_path,
                title=hit.title,
                description=f"{hit.file_type} file {hit.path}",
            )
    return list(links.values())


@user_errors
async def index_status(ctx: Context) -> IndexStatusResult:
    """Report what is indexed: document and chunk counts, files pending, files that failed and why, models."""
    app = app_of(ctx)
    app.require_index()
    status = await anyio.to_thread.run_sync(app.status)
    return IndexStatusResult(
        documents=status.documents,
        chunks=status.chunks,
        pending=status.pending,
        indexing=status.indexing,
        failed=[FailedFileInfo(path=f.path, error=f.error) for f in status.failed],
        watched=status.watched,
        data_dir=status.data_dir,
        vector_store=status.vector_store,
        models=ModelInfo(
            embedding_model=status.embedding_model,
            embedding_dimension=status.embedding_dimension,
            embedding_loaded=status.embedding_loaded,
            embeddings=status.embeddings,
            reranking=status.reranking,
        ),
        read_only=status.role != "writer",
        role=status.role,
        writer_pid=status.writer_pid,
        watching=status.watching,
        watch_problems=status.watch_problems,
        building=status.under_way() is not None,
        error=status.error,
        last_ingest=IngestSummary.of(status.last_ingest) if status.last_ingest else None,
    )


def register(server: MCPServer) -> None:
    server.add_tool(search_docs, annotations=tool_hints("Search documents", read_only=True))
    server.add_tool(index_status, annotations=tool_hints("Index status", read_only=True))
