"""The ``llm-eng`` typer app: each command module's commands, registered here in the order
``llm-eng --help`` lists them, and help that reads naturally."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from llm_engineering import __version__
from llm_engineering.cli.answer import ask
from llm_engineering.cli.dashboard import dashboard
from llm_engineering.cli.documents import ls, show
from llm_engineering.cli.evaluate import eval_retrieval
from llm_engineering.cli.index import ingest, search, status
from llm_engineering.cli.serve import serve
from llm_engineering.cli.train import adapters, jobs, train
from llm_engineering.cli.tune import tune_retrieval

__all__ = ["Command", "app", "eval_app", "main"]

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}


class _NaturalHelp:
    """Help that reads like a man page: ``search [OPTIONS] QUERY``, flags without ``<bool>``.

    Typer writes a required argument as ``{query}`` in the usage line and gives every
    parameter a type, ``<bool>`` for plain flags and ``<list[Path]>`` for a repeatable
    one; here arguments are upper case, flags show no type and a repeatable parameter
    shows the type of one value.
    """

    params: list[Any]

    def _natural(self) -> None:
        for param in self.params:
            _natural_metavar(param)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option


class Command(_NaturalHelp, TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._natural()

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or param.name or ""
                if param.nargs != 1:
                    name += "..."
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class Group(_NaturalHelp, TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._natural()


def _one_value(param: Any) -> str:
    """``<list[Path]>`` -> ``<path>``: the type of one value of a repeatable parameter."""
    label = param.display_type(None).removeprefix("<").removesuffix(">")
    label = label.removeprefix("list[").removesuffix("]")
    return f"<{label.lower() if label == 'Path' else label}>"


def _natural_metavar(param: Any) -> None:
    if param.metavar is not None:
        return
    if isinstance(param, TyperArgument):
        param.metavar = (param.name or "").upper()
        if param.nargs != 1:
            one = _one_value(param) + "..."
            param.display_type_rich = lambda ctx: one  # type: ignore[method-assign]
    elif isinstance(param, TyperOption):
        if param.is_flag:
            param.metavar = ""
        elif param.multiple:
            param.metavar = _one_value(param)


class App(typer.Typer):
    """A typer app whose commands are :class:`Command` and groups :class:`Group`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        kwargs.setdefault("context_settings", HELP_OPTIONS)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)


app = App(
    name="llm-eng",
    help="Search, answer from, and fine-tune on a folder of documents, as an MCP server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
eval_app = App(help="Measure quality on public benchmarks.", no_args_is_help=True)
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


for _command in (ingest, search, status, ask, dashboard, show, ls, serve, train, jobs, adapters):
    app.command()(_command)
app.command("tune-retrieval")(tune_retrieval)
eval_app.command("retrieval")(eval_retrieval)


def main() -> None:
    # OpenMP threads (torch's, for the embedding model and the reranker) sleep while they
    # wait instead of spinning, as a training worker's do: this process shares the cores
    # with llama.cpp, a worker and the user's own programs. Set before torch loads; a
    # user's own setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
