"""``llm-eng dashboard``: the web dashboard alone, reading the data folder a server writes."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llm_engineering.cli.app import app
from llm_engineering.cli.options import (
    ChromaUrl,
    Config,
    DataDir,
    EmbeddingModel,
    LogLevel,
    Watch,
    fail,
    load_settings,
)
from llm_engineering.errors import LlmEngError

__all__ = ["dashboard"]

DEFAULT_PORT = 8766


@app.command()
def dashboard(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = DEFAULT_PORT,
    token: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Token to log in with (or LLM_ENG_TOKEN). Required off loopback."),
    ] = None,
    watch: Watch = None,
    data_dir: DataDir = None,
    config: Config = None,
    chroma_url: ChromaUrl = None,
    embedding_model: EmbeddingModel = None,
    log_level: LogLevel = None,
) -> None:
    """Serve the web dashboard alone (for servers run over stdio): it reads the data folder
    and never takes the index's writer lock. Pass the same --watch as the server."""
    settings = load_settings(
        config, watch=watch, data_dir=data_dir, host=host, port=port, token=token,
        chroma_url=chroma_url, embedding_model=embedding_model, log_level=log_level,
    )  # fmt: skip
    from llm_engineering.dashboard.standalone import build_standalone, run_standalone

    try:
        web = build_standalone(settings)
    except LlmEngError as exc:
        raise fail(str(exc), 2) from exc
    typer.echo(f"dashboard at {web.url}", err=True)
    if not settings.watch:
        typer.echo(
            "note: no folders are watched here; pass the server's --watch to open documents",
            err=True,
        )
    run_standalone(web)
