"""The settings of every group in one flat model, and how they are loaded: command-line flags >
``LLM_ENG_*`` environment > TOML file > defaults."""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from llm_engineering.config.answers import AnswerSettings
from llm_engineering.config.index import IndexSettings
from llm_engineering.config.models import ModelSettings
from llm_engineering.config.server import ServerSettings
from llm_engineering.config.training import TrainingSettings
from llm_engineering.config.values import APP_NAME
from llm_engineering.errors import ConfigError

__all__ = ["OTHER_ENV", "Settings", "default_config_file", "load_settings", "unknown_env"]

OTHER_ENV = frozenset(
    {"LLM_ENG_CONFIG", "LLM_ENG_WORKER_THREADS", "LLM_ENG_WORKER_NICE", "LLM_ENG_TEST_RUN_DIR",
     "LLM_ENG_TEST_RUN_PID"}
)  # fmt: skip
"""``LLM_ENG_*`` variables that are not settings: the config file's name, what a server
tells its training workers, the test run's own."""
_warned: set[str] = set()

# The TOML file is chosen at load time (flag or env), but pydantic-settings asks for its
# sources on the class; a context variable carries the choice into that hook.
_toml_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("toml_file", default=None)


def default_config_file() -> Path:
    """The TOML file read when neither ``--config`` nor ``LLM_ENG_CONFIG`` names one."""
    return platformdirs.user_config_path(APP_NAME) / "config.toml"


# pydantic collects fields from the last base to the first: this order lists them index first.
class Settings(
    ServerSettings, TrainingSettings, AnswerSettings, ModelSettings, IndexSettings, BaseSettings
):
    """Every setting of the server, the CLI, the tests and the benchmarks.

    One flat model made of the groups (each a model of its fields and their checks), so a
    setting is ``settings.chunk_size`` everywhere, ``LLM_ENG_CHUNK_SIZE`` in the environment
    and ``chunk_size`` in the TOML file, whichever group declares it.
    """

    model_config = SettingsConfigDict(
        env_prefix="LLM_ENG_",
        extra="forbid",
        validate_default=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _toml_file.get()
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)


def _problem(error: Any) -> str:
    """pydantic's message, except for an unknown key: say so, and name the nearest known one."""
    if error["type"] != "extra_forbidden":
        return str(error["msg"])
    import difflib

    key = str(error["loc"][-1]) if error["loc"] else ""
    near = difflib.get_close_matches(key, list(Settings.model_fields), n=1, cutoff=0.6)
    return f"unknown setting (did you mean {near[0]}?)" if near else "unknown setting"


def unknown_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """``LLM_ENG_*`` variables that name no setting, each with the nearest one's name when
    there is one: ``LLM_ENG_CHUNK_SISE (did you mean LLM_ENG_CHUNK_SIZE?)``."""
    import difflib

    environ = os.environ if environ is None else environ
    known = {name.upper() for name in Settings.model_fields} | {n[8:] for n in OTHER_ENV}
    found = []
    for name in sorted(environ):
        rest = name.upper()[8:]
        if name.upper().startswith("LLM_ENG_") and rest not in known:
            near = difflib.get_close_matches(rest, sorted(known), n=1, cutoff=0.6)
            found.append(f"{name} (did you mean LLM_ENG_{near[0]}?)" if near else name)
    return found


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Build the settings.

    Args:
        config_file: TOML file to read. Defaults to ``LLM_ENG_CONFIG`` (set but empty: no
            file) or :func:`default_config_file` when that exists.
        **flags: Values given on the command line; ``None`` means "not given".

    Raises:
        ConfigError: The file is missing or invalid, or a value does not validate.
    """
    from pydantic import ValidationError

    env_file = os.environ.get("LLM_ENG_CONFIG")
    explicit = config_file or (Path(env_file) if env_file else None)
    toml_path: Path | None
    if explicit is not None:
        explicit = explicit.expanduser()
        if not explicit.is_file():
            raise ConfigError(
                f"config file {explicit} does not exist (given by --config or LLM_ENG_CONFIG)"
            )
        toml_path = explicit
    elif env_file == "":  # LLM_ENG_CONFIG set but empty: read no file at all
        toml_path = None
    else:
        toml_path = default_config_file() if default_config_file().is_file() else None

    for unknown in unknown_env():
        if unknown not in _warned:  # once per process
            _warned.add(unknown)
            logging.getLogger(__name__).warning(
                "ignored environment variable %s: no setting has that name", unknown
            )
    given = {key: value for key, value in flags.items() if value is not None}
    token = _toml_file.set(toml_path)
    try:
        return Settings(**given)
    except ValidationError as exc:
        where = f" (config file: {toml_path})" if toml_path else ""
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'settings'}: {_problem(err)}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings{where}: {problems}") from exc
    except Exception as exc:  # tomllib.TOMLDecodeError and friends
        if toml_path is not None:
            raise ConfigError(f"could not read config file {toml_path}: {exc}") from exc
        raise
    finally:
        _toml_file.reset(token)
