"""Everything the commands show a person as results: tables and listings (via rich); what
they show while working (bars, spinners, the reply as it is written) is in :mod:`.progress`.

Results go to stdout; progress and notes go to stderr, so ``llm-eng search ... > out``
keeps only the results.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from llm_engineering.adapters.job_view import JobView
    from llm_engineering.adapters.registry import AdapterCard
    from llm_engineering.generation.answer import Answer
    from llm_engineering.generation.base import Availability
    from llm_engineering.index_store.evaluation import EvalResult
    from llm_engineering.index_store.ingest.report import IngestReport
    from llm_engineering.index_store.query.documents import DocumentSlice
    from llm_engineering.index_store.query.listing import DocumentPage
    from llm_engineering.index_store.query.search import Hit
    from llm_engineering.index_store.service import IndexStatus

__all__ = [
    "document_footer",
    "job_line",
    "print_adapters",
    "print_answer",
    "print_documents",
    "print_eval",
    "print_hits",
    "print_report",
    "print_status",
    "results_console",
]


def results_console() -> Console:
    """Where results go (stdout): wrapped to a terminal's width; piped, never wrapped, so a
    script or a file gets whole lines."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(soft_wrap=True, width=10_000)


def print_report(report: IngestReport) -> None:
    from rich.table import Table

    console = results_console()
    table = Table(title=f"Ingest finished in {report.seconds:.1f} s", show_header=True)
    columns = (
        "added",
        "updated",
        "unchanged",
        "removed",
        "failed",
        "chunks embedded",
        "chunks reused",
    )
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(
        str(report.added), str(report.updated), str(report.unchanged), str(report.removed),
        str(len(report.failed)), str(report.chunks_embedded), str(report.chunks_reused),
    )  # fmt: skip
    console.print(table)
    for failed in report.failed:
        console.print(f"[red]failed[/red] {failed.path}: {failed.error}")


def print_hits(hits: Sequence[Hit], took_ms: float) -> None:
    from rich.markup import escape

    console = results_console()
    if not hits:
        console.print("no results")
    for rank, hit in enumerate(hits, start=1):
        where = ", ".join(
            part
            for part in (
                f"p. {hit.page}" if hit.page else "",
                f"lines {hit.start_line}-{hit.end_line}" if hit.start_line else "",
            )
            if part
        )
        console.print(
            f"[bold]{rank}. {escape(hit.path)}[/bold] {where}  "
            f"[dim]score {hit.score:.4f} ({', '.join(hit.retrieved_by)})[/dim]"
        )
        console.print(f"   [cyan]{escape(hit.heading)}[/cyan]")
        for line in _passage(hit.text):
            console.print(f"   {line}" if line else "", highlight=False, markup=False)
    reranked = f", reranked by {hits[0].reranker}" if hits and hits[0].reranker else ""
    console.print(f"[dim]{took_ms:.1f} ms{reranked}[/dim]")


def _passage(text: str, limit: int = 300) -> list[str]:
    """The start of a passage with its own lines (code stays code), blank runs made one."""
    cut = text.strip()
    more = "…" if len(cut) > limit else ""
    lines: list[str] = []
    for line in (cut[:limit] + more).splitlines():
        if line.strip() or (lines and lines[-1]):
            lines.append(line.rstrip())
    return lines


def print_status(info: IndexStatus) -> None:
    from llm_engineering.index_store.read.readers import SUPPORTED_EXTENSIONS

    console = results_console()
    console.print(f"[bold]data dir[/bold]        {info.data_dir}")
    console.print(f"[bold]vector store[/bold]    {info.vector_store}")
    console.print(
        f"[bold]embedding model[/bold] {info.embedding_model} ({info.embedding_dimension or '?'} dims)"
    )
    console.print(f"[bold]embeddings[/bold]      {info.embeddings}", highlight=False)
    console.print(f"[bold]reranking[/bold]       {info.reranking}", highlight=False)
    console.print(
        f"[bold]documents[/bold]       {info.documents}  ([bold]chunks[/bold] {info.chunks})"
    )
    console.print(f"[bold]watched[/bold]         {', '.join(info.watched) or '-'}")
    for problem in info.watch_problems:
        console.print(f"  [yellow]{problem}[/yellow]", highlight=False)
    under_way = info.under_way()
    if under_way:
        console.print(f"[bold]indexing[/bold]        {under_way}", highlight=False)
    if info.error:
        console.print(f"[bold]error[/bold]           [red]{info.error}[/red]", highlight=False)
    console.print(
        f"[bold]file types[/bold]      {' '.join(sorted(SUPPORTED_EXTENSIONS))}", highlight=False
    )
    console.print(f"[bold]failed[/bold]          {len(info.failed)}")
    for failed in info.failed:
        console.print(f"  [red]{failed.path}[/red]: {failed.error}")


_WHAT_HAPPENED = {
    "extracted": "the model's answer was not supported by the passages; the best matching "
    "sentence is quoted",
    "unsupported": "the model's answer was not supported by the passages, and no passage "
    "sentence answers the question: read the passages below",
    "not_in_context": "no passage found is about the question",
    "no_context": "no passages: the model answered from its own knowledge",
    "from_adapter": "the passages do not hold the answer; the adapter answered from what it "
    "was trained on",
}


def print_answer(result: Answer) -> None:
    console = results_console()
    console.print(result.answer, highlight=False)
    if result.citations:
        console.print("\n[bold]Sources[/bold]")
        for citation in result.citations:
            console.print(f"  [{citation.n}] {_where(citation)}", highlight=False)
    if result.status != "answered":
        console.print(f"\n[yellow]{_WHAT_HAPPENED[result.status]}[/yellow]", highlight=False)
        if result.passages:
            console.print("[bold]Passages[/bold]")
        for passage in result.passages[:3]:
            console.print(f"  [{passage.n}] {_where(passage)}", highlight=False)
            console.print(f"      {_short(passage.text)}", highlight=False)
    model = result.model + (f" + {result.adapter}" if result.adapter else "")
    console.print(
        f"[dim]{result.status}; {model}; {result.completion_tokens} tokens at "
        f"{result.tokens_per_s:.0f} tok/s; {result.took_ms / 1000:.1f} s[/dim]",
        highlight=False,
    )
    if result.status in ("extracted", "unsupported") and result.model_answer.strip():
        console.print(
            f"[dim]the model replied {_short(result.model_answer)!r} (--json shows model_answer)"
            "[/dim]",
            highlight=False,
        )
    for note in result.notes:
        console.print(f"[dim]note: {note}[/dim]", highlight=False)


def _where(source: Any) -> str:
    """``path:start-end``, ``path, p. N, lines a-b``, or the passage number for a given one."""
    where = source.path or "(given passage)"
    if source.page:
        where += f", p. {source.page}"
        if source.start_line:
            where += f", lines {source.start_line}-{source.end_line}"
    elif source.start_line:
        where += f":{source.start_line}-{source.end_line}"
    return where


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def job_line(view: JobView) -> str:
    job = view.job
    parts = [f"{job.id}  {job.name:<16} {job.status:<11}"]
    if view.total:
        parts.append(f"step {view.step}/{view.total}")
    if view.loss is not None:
        parts.append(f"loss {view.loss:.3f}")
    if view.eta_s is not None and job.status == "running":
        parts.append(f"eta {view.eta_s:.0f}s")
    if job.status == "running" and job.cancel_requested:
        parts.append("cancel requested")
    if job.adapter:
        parts.append(f"-> {job.adapter}")
    if job.status == "succeeded" and view.result and view.result.budget_reached:
        minutes = (view.result.hyperparameters or job.hyperparameters).get("max_minutes")
        limit = f" (max_minutes {minutes:g})" if isinstance(minutes, int | float) else ""
        parts.append(f"stopped by the time limit{limit}")
    check = view.result.answer_check if view.result else None
    if check:
        scores = [f"{k} F1 {v['f1']:.2f}" for k, v in check.items() if v.get("prompts")]
        parts.append("answer check: " + ", ".join(scores))
    kept = view.result.kept_check if view.result else None
    if kept:
        parts.append(f"kept {kept['kept']:.2f}, leaked {kept['leaked']:.2f}")
    if job.error:
        parts.append(f"({job.error})")
    if job.status == "interrupted":
        parts.append(f"resume: llm-eng jobs {job.id} --resume --follow")
    return "  ".join(parts)


def print_adapters(cards: Sequence[AdapterCard], serving: Sequence[Availability]) -> None:
    """One line per version, and under it where it answers now (or why it cannot)."""
    import typer

    if not cards:
        typer.echo("no adapters yet (llm-eng train DATA.jsonl --name NAME)")
    for card, where in zip(cards, serving, strict=True):
        loss = f"{card.final_loss:.3f}" if card.final_loss is not None else "-"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(card.created))
        kept = card.metrics.get("kept_check")
        general = f"  kept {kept['kept']:.2f} leaked {kept['leaked']:.2f}" if kept else ""
        typer.echo(
            f"{card.spec:<24} base {Path(card.base_model).name}  {card.dataset_examples} examples  "
            f"loss {loss}{general}  {when}"
        )
        place = {"in_process": "here", "server": "on the server", "none": "cannot answer"}
        typer.echo(f"{'':<24} serving: {place[where.where]}: {where.detail}")


def print_eval(results: Sequence[EvalResult], queries: int, documents: int) -> None:
    from rich.table import Table

    from llm_engineering.index_store.evaluation import METRICS

    table = Table(title=f"{queries} queries, {documents} documents")
    for column in ("mode", *METRICS, "p50 ms", "p95 ms"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for r in results:
        table.add_row(
            r.mode, *(f"{r.metrics[m]:.4f}" for m in METRICS),
            f"{r.latency_ms_p50:.1f}", f"{r.latency_ms_p95:.1f}",
        )  # fmt: skip
    console = results_console()
    console.print(table)
    for r in results:
        if r.extra.get("reranker"):
            console.print(f"reranker: {r.extra['reranker']}")


def document_footer(result: DocumentSlice) -> None:
    """Where the printed slice lies and how to go on, on stderr (stdout keeps only the text)."""
    from rich.console import Console

    if result.page is not None:
        where = f"pages {result.page}-{result.end_page} of {result.total_pages}"
        if result.start_line is not None:
            where += f", lines {result.start_line}-{result.end_line} of {result.total_lines}"
    else:
        where = f"lines {result.start_line}-{result.end_line} of {result.total_lines}"
    more = ""
    if result.next_page is not None:
        more = f"; next: --page {result.next_page}"
    elif result.next_start_line is not None:
        more = f"; next: {result.rel_path}:{result.next_start_line}"
    console = Console(stderr=True)
    console.print(f"[dim]{result.path}: {where}{more}[/dim]", highlight=False)
    for note in result.notes:
        console.print(f"[dim]note: {note}[/dim]", highlight=False)


def print_documents(page: DocumentPage, statuses: Sequence[str] | None = None) -> None:
    """The page as a table; ``statuses``: the ones asked for (to say that none has them)."""
    from rich.console import Console
    from rich.table import Table

    if not page.documents:  # not an empty table
        asked = " or ".join(statuses or ())
        results_console().print(f"no {asked} files" if asked else "no files", highlight=False)
        return

    table = Table(show_header=True, box=None)
    for column in ("status", "path", "type", "size", "modified", "chunks"):
        table.add_column(column, justify="right" if column in ("size", "chunks") else "left")
    for doc in page.documents:
        style = {"failed": "red", "pending": "yellow"}.get(doc.status, "")
        table.add_row(
            f"[{style}]{doc.status}[/{style}]" if style else doc.status, doc.path, doc.file_type,
            _size(doc.size), time.strftime("%Y-%m-%d %H:%M", time.localtime(doc.modified)),
            str(doc.chunk_count),
        )  # fmt: skip
    console = results_console()
    console.print(table)
    for doc in page.documents:
        if doc.error:
            console.print(f"[red]{doc.path}[/red]: {doc.error}", highlight=False)
    totals = ", ".join(f"{n} {status}" for status, n in page.totals.items())
    Console(stderr=True).print(f"[dim]{totals}[/dim]")
    if page.next_cursor:  # whole, never wrapped: it is copied back as one word
        Console(stderr=True, soft_wrap=True).print(
            f"[dim]more: --cursor {page.next_cursor}[/dim]", highlight=False
        )


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)
