"""Prompts a person picks from the host's menu: ``ask_my_docs``, ``summarize_document``, ``fine_tune``.

Each is a ready-made first message: it carries what the server can fetch at once (search
hits, a document's text) and tells the model which tools to use for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import anyio.to_thread
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts.base import Message, UserMessage
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    EmbeddedResource,
    Prompt,
    ResourceLink,
    TextResourceContents,
)
from pydantic import Field

from llm_engineering.errors import UserError
from llm_engineering.index_store.query.search import Hit
from llm_engineering.tools.common import app_of

__all__ = ["register"]

HITS = 5


def _cite(hit: Hit) -> str:
    if hit.page is not None:
        return f"{hit.path}, page {hit.page}"
    if hit.start_line is not None:
        return f"{hit.path}:{hit.start_line}-{hit.end_line}"
    return hit.path


async def ask_my_docs(
    ctx: Context,
    question: Annotated[str, Field(description="What to ask about your documents.")],
    adapter: Annotated[
        str | None, Field(description="A fine-tuned adapter to answer with (optional).")
    ] = None,
) -> list[Message]:
    """Answer a question from your indexed documents, citing the files and lines it comes from."""
    if not question.strip():
        raise MCPError(INVALID_PARAMS, "question is empty: say what to ask your documents")
    app = app_of(ctx)
    hits: list[Hit] = []
    if app.index is not None:
        index = app.index
        hits, _ = await anyio.to_thread.run_sync(lambda: index.search(question, top_k=HITS))
    steps = [
        f"Answer this question from my documents: {question}",
        "",
        "1. Search: call search_docs (more than once, with other words, if the first results "
        "miss). The first results are below.",
        "2. Open the relevant documents: call get_document with a hit's path (and start_line/"
        "end_line or page, or around=chunk_id) to read more than the passage, or read its "
        "doc:// resource.",
        "3. Answer only from what you read, and cite every claim as path:start-end (or "
        "path, page N). Say so plainly when the documents do not answer the question.",
    ]
    if adapter:
        steps.append(
            f"4. Then also ask answer_with_context(question, adapter={adapter!r}) and compare "
            "its answer with yours."
        )
    messages: list[Message] = [UserMessage("\n".join(steps))]
    if not hits:
        messages.append(UserMessage("search_docs found nothing yet (is the folder indexed?)."))
    for rank, hit in enumerate(hits, 1):
        messages.append(UserMessage(f"[{rank}] {_cite(hit)} ({hit.title})\n{hit.text}"))
    seen: set[str] = set()
    for hit in hits:
        if app.index is not None and hit.path not in seen:
            seen.add(hit.path)
            uri = app.index.document_uri(hit.path)
            messages.append(UserMessage(ResourceLink(uri=uri, name=hit.rel_path, title=hit.title)))
    return messages


async def summarize_document(
    ctx: Context,
    path: Annotated[
        str, Field(description="The document: its path, absolute or inside the watched folder.")
    ],
) -> list[Message]:
    """Summarize one indexed document, given to the model whole as an embedded resource."""
    index = app_of(ctx).index
    try:
        if index is None:
            raise UserError("the index is not available")
        doc = await anyio.to_thread.run_sync(lambda: index.get_document(path=path))
    except UserError as exc:
        raise MCPError(INVALID_PARAMS, str(exc)) from exc
    resource = TextResourceContents(uri=doc.uri, text=doc.text, mime_type=doc.mime_type)
    more = (
        " The text was cut at its size limit: read the rest with get_document before summarizing."
        if doc.truncated
        else ""
    )
    return [
        UserMessage(EmbeddedResource(resource=resource)),
        UserMessage(
            f"Summarize the document above ({doc.title}, {doc.path}): what it is for, its main "
            "points in order, and anything a reader must act on. Cite the lines (path:start-end) "
            f"or pages each point comes from.{more}"
        ),
    ]


DATASET_FORMATS = """\
The dataset is a JSONL file (one JSON object per line) in one of four shapes, detected per line:
- chat: {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
  (an optional system message, then user and assistant turns alternating, ending with the assistant)
- alpaca: {"instruction": "...", "input": "...", "output": "..."} (input optional)
- prompt/completion: {"prompt": "...", "completion": "..."}
- text: {"text": "..."} (trained on whole)
Every bad line is reported with its number and the reason, and nothing starts until all are good.
It must lie inside a watched folder or the server's data folder."""


async def fine_tune(
    ctx: Context,
    adapter_name: Annotated[
        str, Field(description="A name for the new adapter (letters, digits, - and _).")
    ],
    dataset_path: Annotated[str, Field(description="The JSONL file of training examples.")],
) -> list[Message]:
    """Fine-tune the local model on your examples (QLoRA) and follow the job until it ends."""
    if app_of(ctx).read_only:
        raise MCPError(INVALID_PARAMS, "this server is read-only (--read-only): it cannot train")
    return [
        UserMessage(
            f"Fine-tune the local model into the adapter {adapter_name!r} on {dataset_path}.\n\n"
            f"{DATASET_FORMATS}\n\n"
            "1. Call start_qlora_job(adapter_name, dataset_path). If it reports bad lines, show "
            "them to me with the fix for each and stop.\n"
            "2. Follow the job with get_job(job_id, wait_s=60) until its status is succeeded, "
            "failed, cancelled or interrupted; tell me its progress (step, loss) as it goes.\n"
            f"3. When it succeeds, try the adapter: answer_with_context(question, "
            f"adapter={adapter_name!r}) on a question the examples cover, and show me the "
            "answer beside the base model's (no adapter)."
        )
    ]


def register(server: MCPServer, read_only: bool) -> None:
    server.prompt(title="Ask my documents")(ask_my_docs)
    server.prompt(title="Summarize a document")(summarize_document)
    if not read_only:
        server.prompt(title="Fine-tune on my examples")(fine_tune)
    server.middleware.append(_checked_prompt_requests(server))


def _checked_prompt_requests(server: MCPServer) -> Any:
    """Middleware answering a ``prompts/get`` whose name or arguments are wrong with -32602 and
    what is known; the SDK raises ValueError for them, which reaches the client as -32603
    "Internal server error" (and a traceback in the log)."""

    async def check(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "prompts/get":
            problem = _prompt_problem(await server.list_prompts(), ctx.params or {})
            if problem is not None:
                raise MCPError(INVALID_PARAMS, problem)
        return await call_next(ctx)

    return check


def _prompt_problem(prompts: list[Prompt], params: Mapping[str, Any]) -> str | None:
    """What is wrong with a ``prompts/get`` request's name or arguments, or None."""

    def signature(prompt: Prompt) -> str:
        args = [a.name + ("" if a.required else "?") for a in prompt.arguments or []]
        return f"{prompt.name}({', '.join(args)})"

    known = {prompt.name: prompt for prompt in prompts}
    name = params.get("name")
    offered = "; ".join(signature(p) for p in prompts)
    prompt = known.get(name) if isinstance(name, str) else None
    if prompt is None:
        return f"unknown prompt {name!r}: the prompts are {offered} ('?' = optional)"
    given = params.get("arguments") or {}
    if not isinstance(given, Mapping):
        return f"arguments of {name!r} must be an object of strings: {signature(prompt)}"
    takes = {a.name: a for a in prompt.arguments or []}
    unknown = sorted(set(given) - set(takes))
    missing = [a.name for a in takes.values() if a.required and given.get(a.name) is None]
    not_text = sorted(k for k, v in given.items() if k in takes and not isinstance(v, str | None))
    if not (unknown or missing or not_text):
        return None
    parts = [
        *([f"unknown argument(s) {', '.join(map(repr, unknown))}"] if unknown else []),
        *([f"missing required argument(s) {', '.join(map(repr, missing))}"] if missing else []),
        *([f"argument(s) {', '.join(map(repr, not_text))} must be text"] if not_text else []),
    ]
    return f"prompt {name!r}: {'; '.join(parts)}. It takes {signature(prompt)} ('?' = optional)"
