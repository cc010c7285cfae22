"""``llm-eng``: serve, ingest, search, status, ask, train, jobs, adapters, eval.

Heavy libraries are imported inside the commands, so ``llm-eng --help`` is instant.
Command output goes to stdout; progress and logs go to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from llm_engineering import __version__
from llm_engineering.errors import LlmEngError

if TYPE_CHECKING:
    from llm_engineering.config import Settings
    from llm_engineering.index_store.service import IndexService

app = typer.Typer(
    name="llm-eng",
    help="Search, answer from, and fine-tune on a folder of documents, as an MCP server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Options shared by the commands. None means "not given", so env and config file apply.
DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (index, jobs, adapters).")
]
Watch = Annotated[
    Optional[list[Path]],  # noqa: UP045
    typer.Option("--watch", "-w", help="Folder to index (repeatable). Indexed at start."),
]
Config = Annotated[Optional[Path], typer.Option("--config", help="TOML config file.")]  # noqa: UP045
ChromaUrl = Annotated[
    str | None, typer.Option("--chroma-url", help="Chroma server URL; default embedded.")
]
EmbeddingModel = Annotated[
    str | None, typer.Option("--embedding-model", help="Embedding model name or path.")
]
LogLevel = Annotated[str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _settings(config: Path | None, **flags: Any) -> Settings:
    from llm_engineering.config import load_settings
    from llm_engineering.logs import setup_logging

    try:
        settings = load_settings(config, **flags)
    except LlmEngError as exc:
        raise _fail(str(exc), 2) from exc
    setup_logging(settings.log_level)
    return settings


def _open_index(settings: Settings) -> IndexService:
    from llm_engineering.index_store.service import IndexService

    try:
        return IndexService(settings)
    except LlmEngError as exc:
        raise _fail(str(exc)) from exc


def _ingest_with_progress(index: IndexService, targets: list[Path]) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}", style="dim"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def progress(done: int, total: int, message: str) -> None:
            name = Path(message).name
            bar.update(task, completed=done, total=total, description=name[-60:])

        return index.ingest(targets, progress)


def _refresh_watched(index: IndexService) -> None:
    """Index the --watch folders first, unless a running server already keeps them indexed."""
    from llm_engineering.errors import IndexBusyError

    if not index.settings.watch:
        return
    try:
        _ingest_with_progress(index, list(index.settings.watch))
    except IndexBusyError:
        typer.echo(
            f"note: llm-eng (pid {index.lock.holder()}) keeps this index up to date", err=True
        )


def _print_report(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Ingest finished in {report.seconds:.1f} s", show_header=True)
    for column in (
        "added",
        "updated",
        "unchanged",
        "removed",
        "failed",
        "chunks embedded",
        "chunks reused",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        str(report.added), str(report.updated), str(report.unchanged), str(report.removed),
        str(len(report.failed)), str(report.chunks_embedded), str(report.chunks_reused),
    )  # fmt: skip
    console.print(table)
    for failed in report.failed:
        console.print(f"[red]failed[/red] {failed.path}: {failed.error}")


@app.command()
def serve(
    http: Annotated[
        bool, typer.Option("--http", help="Serve streamable HTTP at /mcp instead of stdio.")
    ] = False,
    host: Annotated[str | None, typer.Option(help="HTTP bind address (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="HTTP port (default 8765).")] = None,  # noqa: UP045
    token: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Bearer token HTTP clients must send (or LLM_ENG_TOKEN). Required off loopback."
        ),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Never write to the index.")
    ] = False,
    watch: Watch = None,
    data_dir: DataDir = None,
    config: Config = None,
    chroma_url: ChromaUrl = None,
    embedding_model: EmbeddingModel = None,
    log_level: LogLevel = None,
) -> None:
    """Run the MCP server (stdio by default; --http for streamable HTTP)."""
    settings = _settings(
        config, watch=watch, data_dir=data_dir, host=host, port=port, token=token,
        chroma_url=chroma_url, embedding_model=embedding_model, log_level=log_level,
    )  # fmt: skip
    from llm_engineering.server.app import create_server

    server = create_server(settings, read_only=read_only)
    if http:
        from llm_engineering.server.http import run_http

        try:
            run_http(server, settings)
        except LlmEngError as exc:
            raise _fail(str(exc), 2) from exc
    else:
        server.run("stdio")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to index.")],
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Drop the whole index first (e.g. after changing the embedding model).",
        ),
    ] = False,
    watch: Watch = None,
    data_dir: DataDir = None,
    config: Config = None,
    chroma_url: ChromaUrl = None,
    embedding_model: EmbeddingModel = None,
    log_level: LogLevel = None,
) -> None:
    """Index files and folders: new and changed files are embedded, deleted ones removed."""
    settings = _settings(
        config, watch=watch, data_dir=data_dir, chroma_url=chroma_url,
        embedding_model=embedding_model, log_level=log_level or "ERROR",
    )  # fmt: skip
    from llm_engineering.index_store.service import IndexService

    try:
        index = IndexService(settings, rebuild=rebuild)
        report = _ingest_with_progress(index, [*paths, *settings.watch])
    except LlmEngError as exc:
        raise _fail(str(exc)) from exc
    _print_report(report)
    if report.failed:
        raise typer.Exit(3)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=50)] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or keyword.")] = "hybrid",
    path_prefix: Annotated[str | None, typer.Option(help="Only paths starting with this.")] = None,
    file_type: Annotated[
        list[str] | None, typer.Option("--file-type", "-t", help="Only this type (repeatable).")
    ] = None,
    rerank: Annotated[
        bool, typer.Option("--rerank", help="Rerank a larger candidate pool first.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    watch: Watch = None,
    data_dir: DataDir = None,
    config: Config = None,
    chroma_url: ChromaUrl = None,
    embedding_model: EmbeddingModel = None,
    log_level: LogLevel = None,
) -> None:
    """Search the index (hybrid by default) and print the best passages."""
    if mode not in ("hybrid", "dense", "keyword"):
        raise _fail(f"unknown mode {mode!r}: use hybrid, dense or keyword", 2)
    if not query.strip():
        raise _fail("the query is empty", 2)
    settings = _settings(
        config, watch=watch, data_dir=data_dir, chroma_url=chroma_url,
        embedding_model=embedding_model, log_level=log_level or "ERROR",
    )  # fmt: skip
    index = _open_index(settings)
    try:
        _refresh_watched(index)
        hits, took_ms = index.search(query, top_k, mode, path_prefix, file_type, rerank)  # type: ignore[arg-type]
    except LlmEngError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps({"results": [asdict(h) for h in hits], "took_ms": took_ms}, indent=2))
        return
    from rich.console import Console

    console = Console()
    if not hits:
        console.print("no results")
    for rank, hit in enumerate(hits, start=1):
        where = (
            f"p. {hit.page}"
            if hit.page
            else (f"lines {hit.start_line}-{hit.end_line}" if hit.start_line else "")
        )
        console.print(
            f"[bold]{rank}. {hit.path}[/bold] {where}  [dim]score {hit.score:.4f} ({', '.join(hit.retrieved_by)})[/dim]"
        )
        console.print(f"   [cyan]{hit.heading}[/cyan]")
        snippet = " ".join(hit.text.split())
        console.print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}", highlight=False)
    reranked = f", reranked by {hits[0].reranker}" if hits and hits[0].reranker else ""
    console.print(f"[dim]{took_ms:.1f} ms{reranked}[/dim]")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    watch: Watch = None,
    data_dir: DataDir = None,
    config: Config = None,
    chroma_url: ChromaUrl = None,
    embedding_model: EmbeddingModel = None,
    log_level: LogLevel = None,
) -> None:
    """Show what is indexed, what failed and why, and where the data lives."""
    settings = _settings(
        config, watch=watch, data_dir=data_dir, chroma_url=chroma_url,
        embedding_model=embedding_model, log_level=log_level or "ERROR",
    )  # fmt: skip
    index = _open_index(settings)
    try:
        _refresh_watched(index)
    except LlmEngError as exc:
        raise _fail(str(exc)) from exc
    info = index.status()
    if as_json:
        typer.echo(json.dumps(asdict(info), indent=2, default=str))
        return
    from rich.console import Console

    from llm_engineering.index_store.readers import SUPPORTED_EXTENSIONS

    console = Console()
    console.print(f"[bold]data dir[/bold]        {info.data_dir}")
    console.print(f"[bold]vector store[/bold]    {info.vector_store}")
    console.print(
        f"[bold]embedding model[/bold] {info.embedding_model} ({info.embedding_dimension or '?'} dims)"
    )
    console.print(
        f"[bold]documents[/bold]       {info.documents}  ([bold]chunks[/bold] {info.chunks})"
    )
    console.print(f"[bold]watched[/bold]         {', '.join(info.watched) or '-'}")
    console.print(
        f"[bold]file types[/bold]      {' '.join(sorted(SUPPORTED_EXTENSIONS))}", highlight=False
    )
    console.print(f"[bold]failed[/bold]          {len(info.failed)}")
    for failed in info.failed:
        console.print(f"  [red]{failed.path}[/red]: {failed.error}")


def _echo_stderr(piece: str) -> None:
    sys.stderr.write(piece)
    sys.stderr.flush()


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    top_k: Annotated[
        int, typer.Option("--top-k", "-k", min=1, max=20, help="Passages to retrieve.")
    ] = 5,
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context", "-c", help="Answer from this passage (repeatable) instead of searching."
        ),
    ] = None,
    adapter: Annotated[str | None, typer.Option(help="Fine-tuned adapter NAME[@VERSION].")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, max=8192)] = 512,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0)] = 0.0,
    path_prefix: Annotated[
        str | None, typer.Option(help="Only retrieve from paths starting with this.")
    ] = None,
    llm_model: Annotated[
        str | None,
        typer.Option(help="GGUF path or packaged name; with --llm-url the server's model."),
    ] = None,
    llm_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    watch: Watch = None,
    data_dir: DataDir = None,
    config: Config = None,
    chroma_url: ChromaUrl = None,
    embedding_model: EmbeddingModel = None,
    log_level: LogLevel = None,
) -> None:
    """Answer a question from the index with the local model, and show the sources."""
    settings = _settings(
        config, watch=watch, data_dir=data_dir, chroma_url=chroma_url, embedding_model=embedding_model,
        llm_model=llm_model, llm_url=llm_url, log_level=log_level or "ERROR",
    )  # fmt: skip
    from llm_engineering.generation.answer import Answerer
    from llm_engineering.generation.models import GeneratorCache

    generators = GeneratorCache(settings)
    try:
        index = _open_index(settings) if context is None else None
        if index is not None:
            _refresh_watched(index)
        from llm_engineering.adapters.service import TrainingService

        training = TrainingService(settings)
        answerer = Answerer(
            generators.get,
            index,
            rerank=settings.answer_rerank,
            adapters=training.resolve_adapter,
        )
        stream = None if as_json else _echo_stderr
        result = answerer.answer(
            question, top_k, adapter, max_tokens, temperature, context, path_prefix, on_token=stream
        )
    except LlmEngError as exc:
        raise _fail(str(exc)) from exc
    finally:
        generators.close()
    if as_json:
        typer.echo(json.dumps(asdict(result), indent=2))
        return
    from rich.console import Console

    console = Console()
    sys.stderr.write("\n")
    console.print(result.answer, highlight=False)
    if result.citations:
        console.print("\n[bold]Sources[/bold]")
        for citation in result.citations:
            where = citation.path or "(given passage)"
            if citation.page:
                where += f", p. {citation.page}"
            elif citation.start_line:
                where += f", lines {citation.start_line}-{citation.end_line}"
            console.print(f"  [{citation.n}] {where}", highlight=False)
    console.print(
        f"[dim]{result.status}; {result.model}; {result.completion_tokens} tokens at "
        f"{result.tokens_per_s:.0f} tok/s; {result.took_ms / 1000:.1f} s[/dim]"
    )
    for note in result.notes:
        console.print(f"[dim]note: {note}[/dim]")


def _hyperparameters(pairs: list[str] | None, **named: Any) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in named.items() if v is not None}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise _fail(f"--set takes NAME=VALUE, got {pair!r}", code=2)
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw
    return values


def _job_line(view: Any) -> str:
    job = view.job
    parts = [f"{job.id}  {job.name:<16} {job.status:<11}"]
    if view.total:
        parts.append(f"step {view.step}/{view.total}")
    if view.loss is not None:
        parts.append(f"loss {view.loss:.3f}")
    if view.eta_s is not None and job.status == "running":
        parts.append(f"eta {view.eta_s:.0f}s")
    if job.adapter:
        parts.append(f"-> {job.adapter}")
    if job.error:
        parts.append(f"({job.error})")
    return "  ".join(parts)


def _training(config: Path | None, data_dir: Path | None) -> Any:
    from llm_engineering.adapters.service import TrainingService

    return TrainingService(_settings(config, data_dir=data_dir, log_level="WARNING"))


@app.command()
def train(
    dataset: Annotated[
        Path, typer.Argument(help="JSONL: chat, alpaca, prompt/completion or text.")
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Adapter name to register.")],
    base_model: Annotated[
        str | None, typer.Option(help="GGUF (name or path) or HF model; default: llm_model.")
    ] = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the data (default 3).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many steps.")] = None,  # noqa: UP045
    max_minutes: Annotated[Optional[float], typer.Option(help="Stop after this long.")] = None,  # noqa: UP045
    learning_rate: Annotated[Optional[float], typer.Option("--lr", help="Default 2e-4.")] = None,  # noqa: UP045
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Any hyperparameter as NAME=VALUE (repeatable), e.g. r=8."),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Queue it and return; a running server trains it.")
    ] = False,
    data_dir: DataDir = None,
    config: Config = None,
    log_level: LogLevel = None,
) -> None:
    """Fine-tune the local model with QLoRA on DATASET and register the adapter as NAME."""
    settings = _settings(config, data_dir=data_dir, log_level=log_level or "WARNING")
    from llm_engineering.adapters.service import TrainingService

    hyperparameters = _hyperparameters(
        set_,
        epochs=epochs,
        max_steps=max_steps,
        max_minutes=max_minutes,
        learning_rate=learning_rate,
    )
    training = TrainingService(settings)
    try:
        job = training.start_job(
            name, str(dataset), base_model=base_model, hyperparameters=hyperparameters,
            check_roots=False,
        )  # fmt: skip
    except LlmEngError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"job {job.id}: {job.examples} examples, queued", err=True)
    if detach:
        typer.echo(job.id)
        return
    runner = training.start_runner()
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from llm_engineering.adapters.jobs import ACTIVE

    try:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[loss]}"), TimeRemainingColumn(), transient=True,
        ) as progress:  # fmt: skip
            task = progress.add_task("waiting", total=None, loss="")
            while True:
                view = training.view(job.id, tail=0)
                where = "training" if runner.active else "queued (another process runs jobs)"
                loss = f"loss {view.loss:.3f}" if view.loss is not None else ""
                progress.update(
                    task, description=f"{view.stage or where}", completed=view.step,
                    total=view.total or None, loss=loss,
                )  # fmt: skip
                if view.job.status not in ACTIVE:
                    break
                time.sleep(0.5)
    except KeyboardInterrupt:
        training.close()
        raise _fail(
            f"stopped following job {job.id}; it resumes from its last checkpoint when a server "
            "or `llm-eng train` runs jobs again (`llm-eng jobs` shows it)",
            code=130,
        ) from None
    training.close()
    view = training.view(job.id, tail=0)
    typer.echo(_job_line(view))
    if view.job.status != "succeeded":
        raise typer.Exit(1)
    typer.echo(f"answer with it: llm-eng ask QUESTION --adapter {view.job.adapter}", err=True)


@app.command()
def jobs(
    job_id: Annotated[str | None, typer.Argument(help="Show this job in full.")] = None,
    cancel: Annotated[bool, typer.Option("--cancel", help="Cancel JOB_ID.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Resume interrupted JOB_ID.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """List training jobs, or show, cancel or resume one."""
    training = _training(config, data_dir)
    try:
        if job_id is None:
            if cancel or resume:
                raise _fail("--cancel and --resume need a JOB_ID", code=2)
            views = [training.view(j.id, tail=0) for j in training.store.jobs()]
            if as_json:
                typer.echo(json.dumps([_view_json(v) for v in views], indent=2))
            elif not views:
                typer.echo("no training jobs yet (llm-eng train DATA.jsonl --name NAME)")
            for view in [] if as_json else views:
                typer.echo(_job_line(view))
            return
        if cancel:
            training.cancel(job_id)
        if resume:
            training.resume(job_id)
        view = training.view(job_id, tail=5)
    except LlmEngError as exc:
        raise _fail(str(exc)) from exc
    finally:
        training.close()
    if as_json:
        typer.echo(json.dumps(_view_json(view), indent=2))
        return
    typer.echo(_job_line(view))
    for event in view.events:
        typer.echo(f"  {json.dumps(event)}")
    if view.loss_plot:
        typer.echo(f"  loss plot: {view.loss_plot}")


def _view_json(view: Any) -> dict[str, Any]:
    data = asdict(view)
    data["loss_plot"] = str(view.loss_plot) if view.loss_plot else None
    return data


@app.command()
def adapters(
    delete: Annotated[
        str | None, typer.Option("--delete", help="Delete NAME@VERSION (or every version of NAME).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """List fine-tuned adapters, or delete one."""
    training = _training(config, data_dir)
    try:
        if delete:
            if not yes and not typer.confirm(f"delete adapter {delete}? This cannot be undone"):
                raise _fail("nothing deleted", code=1)
            for spec in training.delete_adapter(delete, delete):
                typer.echo(f"deleted {spec}")
            return
        cards = training.registry.cards()
    except LlmEngError as exc:
        raise _fail(str(exc)) from exc
    finally:
        training.close()
    if as_json:
        typer.echo(json.dumps([asdict(c) for c in cards], indent=2))
        return
    if not cards:
        typer.echo("no adapters yet (llm-eng train DATA.jsonl --name NAME)")
    for card in cards:
        loss = f"{card.final_loss:.3f}" if card.final_loss is not None else "-"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(card.created))
        typer.echo(
            f"{card.spec:<24} base {Path(card.base_model).name}  {card.dataset_examples} examples  "
            f"loss {loss}  {when}"
        )


eval_app = typer.Typer(help="Measure quality on public benchmarks.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("retrieval")
def eval_retrieval(
    corpus: Annotated[Path, typer.Option(help="BEIR corpus.jsonl")],
    queries: Annotated[Path, typer.Option(help="BEIR queries.jsonl")],
    qrels: Annotated[Path, typer.Option(help="BEIR qrels TSV (query-id, corpus-id, score)")],
    modes: Annotated[
        str, typer.Option(help="Comma-separated: dense, keyword, hybrid, hybrid+rerank.")
    ] = "dense,keyword,hybrid,hybrid+rerank",
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Where the evaluation index is kept (default DATA_DIR/eval-cache)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N judged queries.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
    config: Config = None,
    embedding_model: EmbeddingModel = None,
    log_level: LogLevel = None,
) -> None:
    """Index a BEIR dataset through the normal ingestion path and report nDCG@10, R@10, R@100, MRR@10."""
    from llm_engineering.index_store import evaluation

    wanted = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = sorted(set(wanted) - {"dense", "keyword", "hybrid", "hybrid+rerank"})
    if unknown:
        raise _fail(
            f"unknown mode(s) {', '.join(unknown)}: use dense, keyword, hybrid, hybrid+rerank", 2
        )
    settings = _settings(
        config, data_dir=data_dir, embedding_model=embedding_model, log_level=log_level or "WARNING"
    )
    try:
        judged = evaluation.load_qrels(qrels)
        texts = {
            qid: text for qid, text in evaluation.load_queries(queries).items() if qid in judged
        }
        if limit:
            texts = dict(list(texts.items())[:limit])
        from rich.console import Console

        console = Console(stderr=True)
        with console.status("indexing the corpus (cached after the first run)"):
            index, names = evaluation.open_eval_index(
                corpus, settings, cache_dir or settings.data_dir / "eval-cache"
            )
        results = []
        for mode in wanted:
            with console.status(f"searching {len(texts)} queries ({mode})"):
                run, latencies = evaluation.run_queries(
                    index, texts, names, mode, rerank=mode.endswith("+rerank")
                )
            reranker = index.reranker().name if mode.endswith("+rerank") else None
            results.append(
                evaluation.summarize(
                    mode, evaluation.score_run(run, judged), latencies, reranker=reranker
                )
            )
    except LlmEngError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in results], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(texts)} queries, {index.status().documents} documents")
    for column in ("mode", *evaluation.METRICS, "p50 ms", "p95 ms"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for r in results:
        table.add_row(
            r.mode, *(f"{r.metrics[m]:.4f}" for m in evaluation.METRICS),
            f"{r.latency_ms_p50:.1f}", f"{r.latency_ms_p95:.1f}",
        )  # fmt: skip
    Console().print(table)
    for r in results:
        if r.extra.get("reranker"):
            Console().print(f"reranker: {r.extra['reranker']}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llm-eng {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Search, answer from, and fine-tune on a folder of documents, as an MCP server."""


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
