"""``llm-eng serve``: the MCP server over stdio or streamable HTTP."""

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

__all__ = ["serve"]


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
    dashboard: Annotated[
        bool,
        typer.Option("--dashboard/--no-dashboard", help="With --http, the web dashboard at /."),
    ] = True,
    watch: Watch = None,
    data_dir: DataDir = None,
    config: Config = None,
    chroma_url: ChromaUrl = None,
    embedding_model: EmbeddingModel = None,
    log_level: LogLevel = None,
) -> None:
    """Run the MCP server (stdio by default; --http for streamable HTTP)."""
    settings = load_settings(
        config, watch=watch, data_dir=data_dir, host=host, port=port, token=token,
        chroma_url=chroma_url, embedding_model=embedding_model, log_level=log_level,
    )  # fmt: skip
    from llm_engineering.server.app import create_server

    web = None
    if http and dashboard:
        from llm_engineering.dashboard import Dashboard

        web = Dashboard(settings)
    server = create_server(settings, read_only=read_only, on_open=web.attach if web else None)
    if http:
        from llm_engineering.server.http import run_http

        try:
            run_http(server, settings, web.app if web else None)
        except LlmEngError as exc:
            raise fail(str(exc), 2) from exc
    else:
        server.run("stdio")
