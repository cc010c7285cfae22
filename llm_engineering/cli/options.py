"""What every command shares: its settings as flags, ``--json``, failing with a code.

The settings flags are not written out in each command: :func:`with_settings` derives them
from the settings model (name, type, description as the help), as llama-cpp-python's server
derives its flags from its settings, and hands the command the loaded settings.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace, UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional

import typer

from llm_engineering.errors import LlmEngError

if TYPE_CHECKING:
    from llm_engineering.adapters.service import TrainingService
    from llm_engineering.config import Settings
    from llm_engineering.index_store.service import IndexService

__all__ = [
    "INDEX_FLAGS",
    "AsJson",
    "fail",
    "open_index",
    "open_training",
    "with_settings",
]

INDEX_FLAGS = ("watch", "data_dir", "chroma_url", "embedding_model", "log_level")
"""The settings flags of the commands that open the index (the README lists those commands)."""

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]

_SHORT = {"watch": ("-w",)}
_KEYWORD = inspect.Parameter.KEYWORD_ONLY
# Not a setting: it says which file the settings come from.
_Config = Annotated[Optional[Path], typer.Option("--config", help="TOML config file.")]  # noqa: UP045


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` to stderr; return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _load_settings(config: Path | None, **flags: Any) -> Settings:
    """Settings from flags > env > config file > defaults; a bad setting exits with 2."""
    from llm_engineering.config import load_settings as load
    from llm_engineering.logs import setup_logging

    try:
        settings = load(config, **flags)
    except LlmEngError as exc:
        raise fail(str(exc), 2) from exc
    setup_logging(settings.log_level)
    return settings


def with_settings(
    *names: str, **values: Any
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command ``--config`` and a flag for each setting in ``names``, and call it with
    ``settings``: flags > env > config file > defaults, a bad one exits with 2.

    ``data_dir`` becomes ``--data-dir``, of the setting's type, its description the help.
    ``values`` are the command's own: for a flag, its default; for a setting it has no flag
    for, the value it always takes. Either beats the environment and the file, as a given
    flag does; a flag without one is ``None`` until given, so the environment applies.
    """

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = _own_parameters(command)
        clash = {p.name for p in own} & {*names, "config"}
        if clash:
            raise TypeError(f"{command.__name__} declares {clash} itself")
        flags = [_flag(name, values.get(name)) for name in names]
        # --config beside --data-dir, where every command has shown it
        at = names.index("data_dir") + 1 if "data_dir" in names else len(flags)
        flags.insert(at, inspect.Parameter("config", _KEYWORD, default=None, annotation=_Config))
        fixed = {name: value for name, value in values.items() if name not in names}

        def run(**given: Any) -> None:
            config = given.pop("config")
            flagged = {name: given.pop(name) for name in names}
            command(**given, settings=_load_settings(config, **fixed, **flagged))

        parameters = [*own, *flags]
        run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(run, attribute, getattr(command, attribute))
        return run

    return decorate


def _own_parameters(command: Callable[..., None]) -> list[inspect.Parameter]:
    """The command's parameters but ``settings``, their annotations resolved (typer reads them)."""
    written = {k: v for k, v in command.__annotations__.items() if k not in ("settings", "return")}
    hints = typing.get_type_hints(
        SimpleNamespace(__annotations__=written),
        globalns=command.__globals__,  # type: ignore[attr-defined]
        include_extras=True,
    )
    return [
        parameter.replace(annotation=hints[parameter.name])
        for parameter in inspect.signature(command).parameters.values()
        if parameter.name != "settings"
    ]


def _flag(name: str, default: Any) -> inspect.Parameter:
    """The option for setting ``name``: ``None`` (not given) unless the command has a default."""
    from llm_engineering.config import Settings

    field = Settings.model_fields[name]
    kind = _flag_type(field.annotation)
    help_text = field.description or ""
    usual = field.default
    if default is None and isinstance(usual, str | int | float) and usual != "":
        # The flag's default is None (not given, so env and file apply): say the setting's.
        help_text = f"{help_text.removesuffix('.')} (default {usual})."
    if typing.get_origin(kind) is list:
        help_text += " Repeatable."
    option = typer.Option(
        f"--{name.replace('_', '-')}",
        *_SHORT.get(name, ()),
        help=help_text,
        show_default=default is not None,
    )
    return inspect.Parameter(
        name,
        _KEYWORD,
        default=default,
        annotation=Annotated[Optional[kind], option],  # noqa: UP045
    )


def _flag_type(annotation: Any) -> Any:
    """What the command line takes for a setting: ``str`` for a choice or a secret, one value
    type for a list, the type itself for a path or a number."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, UnionType):
        (annotation,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _flag_type(annotation)
    if origin is list:
        return list[_flag_type(typing.get_args(annotation)[0])]  # type: ignore[misc]
    if origin is Literal or annotation not in (Path, int, float, bool):
        return str
    return annotation


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
