"""``llm-eng ask``: a grounded answer from the index with the local model."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llm_engineering.cli.index import index_watched
from llm_engineering.cli.options import (
    INDEX_FLAGS,
    AsJson,
    fail,
    open_index,
    open_training,
    with_settings,
)
from llm_engineering.cli.output import print_answer
from llm_engineering.cli.progress import streamed_reply
from llm_engineering.cli.remote import Verbose, from_server
from llm_engineering.errors import LlmEngError

if TYPE_CHECKING:
    from llm_engineering.config import Settings
    from llm_engineering.generation.answer import Answer

__all__ = ["ask"]


@with_settings("llm_model", "llm_url", *INDEX_FLAGS, log_level="ERROR")
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
    as_json: AsJson = False,
    verbose: Verbose = False,
    *,
    settings: Settings,
) -> None:
    """Answer a question from the index with the local model, and show the sources."""
    request: dict[str, Any] = {
        "question": question, "top_k": top_k, "adapter": adapter, "max_tokens": max_tokens,
        "temperature": temperature, "contexts": context, "path_prefix": path_prefix,
    }  # fmt: skip
    with streamed_reply() as show:
        on_token = None if as_json else show
        remote = from_server(
            settings, "ask", {**request, "stream": on_token is not None}, kind="answer",
            verbose=verbose, on_token=on_token,
        )  # fmt: skip
        if remote is not None:
            from llm_engineering.generation.answer import Answer
            from llm_engineering.local.wire import revive

            result = revive(Answer, remote)
        else:
            result = _answer_here(settings, request, on_token)
    if as_json:
        typer.echo(json.dumps(asdict(result), indent=2))
        return
    print_answer(result)


def _answer_here(
    settings: Settings, request: dict[str, Any], on_token: Callable[[str], None] | None
) -> Answer:
    """The answer in this process: the index opened, the model loaded for this question."""
    from llm_engineering.generation.answer import Answerer
    from llm_engineering.generation.models import GeneratorCache

    generators = GeneratorCache(settings)
    try:
        index = open_index(settings) if request["contexts"] is None else None
        if index is not None:
            index_watched(index)
        training = open_training(settings)
        answerer = Answerer.from_settings(
            settings, generators, index, adapters=training.resolve_adapter
        )
        return answerer.answer(**request, on_token=on_token)
    except LlmEngError as exc:
        raise fail(str(exc)) from exc
    finally:
        generators.close()
