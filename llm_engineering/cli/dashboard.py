"""``llm-eng dashboard``: the web dashboard alone, reading the data folder a server writes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from llm_engineering.cli.options import INDEX_FLAGS, fail, with_settings
from llm_engineering.errors import LlmEngError

if TYPE_CHECKING:
    from llm_engineering.config import Settings

__all__ = ["dashboard"]

DEFAULT_PORT = 8766


# Its own address, beside a server's (which keeps host and port): these beat the environment.
@with_settings("host", "port", "token", *INDEX_FLAGS, host="127.0.0.1", port=DEFAULT_PORT)
def dashboard(*, settings: Settings) -> None:
    """Serve the web dashboard alone (for servers run over stdio): it reads the data folder
    and never takes the index's writer lock. Pass the same --watch as the server."""
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
