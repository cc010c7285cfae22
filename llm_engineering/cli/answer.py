"""``llm-eng ask``: a grounded answer from the index with the local model."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from llm_engineering.cli import output
from llm_engineering.cli.app import app
from llm_engineering.cli.index import index_watched
from llm_engineering.cli.options import (
    AsJson,
    ChromaUrl,
    Config,
    DataDir,
    EmbeddingModel,
    LogLevel,
    Watch,
    fail,
    load_settings,
    open_index,
    open_training,
)
from llm_engineering.errors import LlmEngError

__all__ = ["ask"]


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
    as_json: AsJson = False,
    watch: Watch = None,
    data_dir: DataDir = None,
    config: Config = None,
    chroma_url: ChromaUrl = None,
    embedding_model: EmbeddingModel = None,
    log_level: LogLevel = None,
) -> None:
    """Answer a question from the index with the local model, and show the sources."""
    settings = load_settings(
        config, watch=watch, data_dir=data_dir, chroma_url=chroma_url, embedding_model=embedding_model,
        llm_model=llm_model, llm_url=llm_url, log_level=log_level or "ERROR",
    )  # fmt: skip
    from llm_engineering.generation.answer import Answerer
    from llm_engineering.generation.models import GeneratorCache

    generators = GeneratorCache(settings)
    try:
        index = open_index(settings) if context is None else None
        if index is not None:
            index_watched(index)
        training = open_training(settings)
        answerer = Answerer.from_settings(
            settings, generators, index, adapters=training.resolve_adapter
        )
        with output.streamed_reply() as show:
            result = answerer.answer(
                question, top_k=top_k, adapter=adapter, max_tokens=max_tokens,
                temperature=temperature, contexts=context, path_prefix=path_prefix,
                on_token=None if as_json else show,
            )  # fmt: skip
    except LlmEngError as exc:
        raise fail(str(exc)) from exc
    finally:
        generators.close()
    if as_json:
        typer.echo(json.dumps(asdict(result), indent=2))
        return
    output.print_answer(result)
