"""Help and settings errors, as a person meets them: `-h` anywhere, usage lines that read naturally."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from llm_engineering.cli import app

COMMANDS = [
    [],
    *([name] for name in typer.main.get_command(app).commands),  # type: ignore[attr-defined]
    ["eval", "retrieval"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "llm-eng")
def test_dash_h_is_help_everywhere_and_the_help_shows_no_type_on_plain_flags(
    command: list[str],
) -> None:
    result = CliRunner().invoke(app, [*command, "-h"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Usage: llm-eng" in result.output
    assert "<bool>" not in result.output and "list[" not in result.output
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage


def test_usage_lines_name_the_arguments_in_capitals() -> None:
    def usage(*command: str) -> str:
        output = CliRunner().invoke(app, [*command, "--help"], terminal_width=200).output
        return next(line for line in output.splitlines() if "Usage:" in line).strip()

    assert usage("search") == "Usage: llm-eng search [OPTIONS] QUERY"
    assert usage("ingest") == "Usage: llm-eng ingest [OPTIONS] PATHS..."
    assert usage("jobs") == "Usage: llm-eng jobs [OPTIONS] [JOB_ID]"
    watch = CliRunner().invoke(app, ["search", "--help"], terminal_width=200).output
    assert "--watch" in watch and "<path>" in watch


def test_a_typo_in_the_config_file_is_an_unknown_key_with_the_nearest_known_one(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("chunk_sise = 300\nzzqq = 1\n")
    result = CliRunner().invoke(app, ["jobs", "--config", str(config)])
    assert result.exit_code == 2
    assert "chunk_sise: unknown setting (did you mean chunk_size?)" in result.output
    assert "zzqq: unknown setting" in result.output
    assert "Extra inputs" not in result.output
