"""The settings flags: derived once from the settings, loaded once for every command."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from llm_engineering.cli import app
from llm_engineering.cli.options import with_settings
from llm_engineering.config import Settings


def _commands() -> list[tuple[str, typer.core.TyperCommand]]:
    found, groups = [], [("", typer.main.get_command(app))]
    while groups:
        prefix, group = groups.pop()
        for name, command in group.commands.items():  # type: ignore[attr-defined]
            if hasattr(command, "commands"):
                groups.append((f"{prefix}{name} ", command))
            else:
                found.append((prefix + name, command))
    return found


def test_every_settings_flag_is_named_for_its_setting_and_says_what_the_setting_says() -> None:
    flags = 0
    for name, command in _commands():
        for param in command.params:
            field = Settings.model_fields.get(param.name or "")
            if field is None:
                continue
            flags += 1
            assert f"--{param.name}".replace("_", "-") in param.opts, (name, param.name)
            described = (field.description or "").removesuffix(".")
            assert described and getattr(param, "help", "").startswith(described), (
                name,
                param.name,
            )
    assert flags >= 40  # watch, data_dir, ... on most of the 12 commands


def test_a_commands_own_value_beats_the_environment_and_a_given_flag_beats_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Settings] = []

    @with_settings("data_dir", "port", "chunk_size", port=9001, host="10.0.0.1")
    def probe(*, settings: Settings) -> None:
        seen.append(settings)

    one = typer.Typer()
    one.command()(probe)
    monkeypatch.setenv("LLM_ENG_PORT", "9100")
    monkeypatch.setenv("LLM_ENG_HOST", "127.0.0.5")
    monkeypatch.setenv("LLM_ENG_CHUNK_SIZE", "300")
    data = ["--data-dir", str(tmp_path)]
    assert CliRunner().invoke(one, data).exit_code == 0
    assert CliRunner().invoke(one, [*data, "--port", "9200", "--chunk-size", "400"]).exit_code == 0
    (defaults, given) = seen
    assert (defaults.port, defaults.host, defaults.chunk_size) == (9001, "10.0.0.1", 300)
    assert (given.port, given.host, given.chunk_size) == (9200, "10.0.0.1", 400)
    assert defaults.data_dir == tmp_path

    bad = CliRunner().invoke(one, [*data, "--chunk-size", "10"])
    assert (
        bad.exit_code == 2
        and "chunk_size: Input should be greater than or equal to 32" in bad.output
    )
