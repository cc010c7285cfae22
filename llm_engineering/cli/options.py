"""What every command shares: the option aliases, settings loading, failing with a code."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from llm_engineering.errors import LlmEngError

if TYPE_CHECKING:
    from llm_engineering.adapters.service import TrainingService
    from llm_engineering.config import Settings
    from llm_engineering.index_store.service import IndexService

__all__ = [
    "AsJson",
    "ChromaUrl",
    "Config",
    "DataDir",
    "EmbeddingModel",
    "LogLevel",
    "Watch",
    "fail",
    "load_settings",
    "open_index",
    "open_training",
]

# None means "not given", so env and config file apply.
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
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` to stderr; return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def load_settings(config: Path | None, **flags: Any) -> Settings:
    """Settings from flags > env > config file > defaults; a bad setting exits with 2."""
    from llm_engineering.config import load_settings as load
    from llm_engineering.logs import setup_logging

    try:
        settings = load(config, **flags)
    except LlmEngError as exc:
        raise fail(str(exc), 2) from exc
    setup_logging(settings.log_level)
    return settings


def open_index(settings: Settings, *, rebuild: bool = False) -> IndexService:
    from llm_engineering.index_store.service import IndexService

    try:
        return IndexService(settings, rebuild=rebuild)
    except LlmEngError as exc:
        raise fail(str(exc)) from exc


def open_training(settings: Settings) -> TrainingService:
    from llm_engineering.adapters.service import TrainingService

    try:
        return TrainingService(settings)
    except LlmEngError as exc:
        raise fail(str(exc)) from exc
