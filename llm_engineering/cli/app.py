"""The ``llm-eng`` typer app; the command modules register their commands on it."""

from __future__ import annotations

from typing import Annotated

import typer

from llm_engineering import __version__

__all__ = ["app", "eval_app"]

app = typer.Typer(
    name="llm-eng",
    help="Search, answer from, and fine-tune on a folder of documents, as an MCP server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
eval_app = typer.Typer(help="Measure quality on public benchmarks.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


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
