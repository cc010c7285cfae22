"""The README's examples must keep working."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llm_engineering.cli import app
from llm_engineering.config import load_settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)


def test_quick_start_has_the_two_make_commands_ci_runs() -> None:
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = [line.split("#")[0].strip() for line in blocks("bash")[0].strip().splitlines()]
    assert commands[0].startswith("make serve") and commands[1] == "make test"
    assert "make test" in (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert "make serve" in quick


def test_the_config_example_loads(tmp_path: Path) -> None:
    (toml,) = blocks("toml")
    path = tmp_path / "config.toml"
    path.write_text(toml)
    settings = load_settings(path)
    assert settings.max_file_size_mb == 50
    assert len(settings.watch) == 2


def test_client_snippets_are_valid_json_that_runs_serve() -> None:
    snippets = [json.loads(text) for text in blocks("json")]
    assert len(snippets) >= 2
    for snippet in snippets:
        server = snippet["mcpServers"]["llm-engineering"]
        assert server["command"].endswith("llm-eng") and server["args"][0] == "serve"


@pytest.mark.parametrize(
    "line",
    [
        line.split("#")[0].strip()
        for text in blocks("bash")
        for line in text.splitlines()
        if "llm-eng " in line and not line.strip().startswith("claude ")
    ],
)
def test_every_documented_command_and_option_exists(line: str) -> None:
    import typer

    words = shlex.split(line[line.index("llm-eng ") :])[1:]
    command: list[str] = [words.pop(0)]
    group = typer.main.get_command(app)
    found = group.commands.get(command[0])  # type: ignore[attr-defined]
    while hasattr(found, "commands"):  # nested commands: `llm-eng eval retrieval`
        command.append(words.pop(0))
        found = found.commands.get(command[-1])
    assert found is not None, f"no command {' '.join(command)}"
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for word in words:
        if word.startswith("--"):
            assert word.split("=")[0] in result.output, (command, word)


def test_every_setting_is_in_the_configuration_table() -> None:
    from llm_engineering.config import Settings

    table = README.split("## Configuration", 1)[1].split("## How it works", 1)[0]
    for name in Settings.model_fields:
        assert f"`{name}`" in table, name


def _commands_taking(option: str) -> set[str]:
    import typer

    found = set()
    groups = [("", typer.main.get_command(app))]
    while groups:
        prefix, group = groups.pop()
        for name, command in group.commands.items():  # type: ignore[attr-defined]
            if hasattr(command, "commands"):
                groups.append((f"{prefix}{name} ", command))
            elif any(option in param.opts for param in command.params):
                found.add(prefix + name)
    return found


@pytest.mark.parametrize("option", ["--watch", "--chroma-url", "--embedding-model"])
def test_the_readme_names_exactly_the_commands_that_take_each_index_option(option: str) -> None:
    text = " ".join(README.split("## Command line", 1)[1].split("## Configuration", 1)[0].split())
    clause = re.search(rf"`{option}` on (.*?)[;.]", text)
    assert clause is not None, f"the README does not say which commands take {option}"
    assert set(re.findall(r"`([a-z -]+)`", clause.group(1))) == _commands_taking(option)


def test_cpu_step_times_come_with_the_conditions_they_were_measured_in() -> None:
    text = " ".join(README.split())
    for match in re.finditer(r"[^.]*\bs per step[^.]*\.", text):
        assert "cores" in match.group(0), match.group(0)
    assert "2 idle cores" in text and "25-80 s per step" in text
