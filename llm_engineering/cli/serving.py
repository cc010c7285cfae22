"""``llm-eng adapters --serve KIND``: what to start a model server with for the adapters.

Only the command (or, for llama-cpp-python, the config file) goes to stdout, so
``llm-eng adapters --serve llama-cpp-python > models.json`` writes a file the server reads;
how to start it and what was left out go to stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from llm_engineering.cli.options import fail
from llm_engineering.errors import LlmEngError

if TYPE_CHECKING:
    from llm_engineering.adapters.registry import AdapterCard
    from llm_engineering.adapters.service import TrainingService
    from llm_engineering.config import Settings
    from llm_engineering.generation.base import Availability

__all__ = ["print_launch", "release", "where_served"]


def where_served(
    training: TrainingService, cards: list[AdapterCard] | None = None
) -> list[Availability]:
    """Where each of ``cards`` (default: every registered version) answers now, as
    ``list_adapters`` says (no model loads; with ``llm_url`` the server is asked)."""
    from llm_engineering.generation.models import GeneratorCache

    generators = GeneratorCache(training.settings)
    try:
        return training.where_served(generators, cards)
    finally:
        generators.close()


def print_launch(kind: str, training: TrainingService) -> None:
    """Print the ``kind`` server's command or config for the registered adapters."""
    try:
        result = training.launch(kind)
    except LlmEngError as exc:
        raise fail(str(exc)) from exc
    typer.echo(result.text)
    served = ", ".join(result.adapters) or "none"
    typer.echo(f"{result.kind}: the base and {len(result.adapters)} adapter(s): {served}", err=True)
    for note in result.notes:
        typer.echo(note, err=True)


def release(settings: Settings, specs: list[str]) -> list[str]:
    """Unload deleted versions from the model server at ``llm_url`` (vLLM); notes on the rest.

    In process there is nothing to free here: a running server frees a deleted version's
    LoRA at its next answer.
    """
    if not settings.llm_url or not specs:
        return []
    from llm_engineering.generation.models import GeneratorCache

    generators = GeneratorCache(settings)
    try:
        return generators.release(specs)
    finally:
        generators.close()
