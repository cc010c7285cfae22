"""``llm-eng eval retrieval``: retrieval quality on a BEIR dataset."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llm_engineering.cli.options import AsJson, fail, with_settings
from llm_engineering.cli.output import print_eval
from llm_engineering.errors import LlmEngError

if TYPE_CHECKING:
    from llm_engineering.config import Settings

__all__ = ["eval_retrieval"]

MODES = ("dense", "keyword", "hybrid", "hybrid+rerank")


@with_settings("data_dir", "embedding_model", "log_level", log_level="WARNING")
def eval_retrieval(
    corpus: Annotated[Path, typer.Option(help="BEIR corpus.jsonl")],
    queries: Annotated[Path, typer.Option(help="BEIR queries.jsonl")],
    qrels: Annotated[Path, typer.Option(help="BEIR qrels TSV (query-id, corpus-id, score)")],
    modes: Annotated[
        str, typer.Option(help="Comma-separated: dense, keyword, hybrid, hybrid+rerank.")
    ] = ",".join(MODES),
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Where the evaluation index is kept (default DATA_DIR/eval-cache)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N judged queries.")] = None,
    as_json: AsJson = False,
    *,
    settings: Settings,
) -> None:
    """Index a BEIR dataset through the normal ingestion path and report nDCG@10, R@10, R@100, MRR@10."""
    from rich.console import Console

    from llm_engineering.index_store import evaluation

    wanted = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = sorted(set(wanted) - set(MODES))
    if unknown:
        raise fail(f"unknown mode(s) {', '.join(unknown)}: use {', '.join(MODES)}", 2)
    try:
        judged = evaluation.load_qrels(qrels)
        texts = {
            qid: text for qid, text in evaluation.load_queries(queries).items() if qid in judged
        }
        if limit:
            texts = dict(list(texts.items())[:limit])
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
        raise fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in results], indent=2))
        return
    print_eval(results, len(texts), index.status().documents)
