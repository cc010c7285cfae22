"""`llm-eng train`, `jobs` and `adapters` as a user runs them, refusing bad requests before anything is queued."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from llm_engineering.cli import app
from tests.adapters.fictional import fact_records


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_hyperparameter_of_the_wrong_type_names_the_setting_and_the_type(tmp_path: Path) -> None:
    dataset = write_jsonl(tmp_path / "faq.jsonl", fact_records(8))
    data = ["--data-dir", str(tmp_path / "data")]
    result = CliRunner().invoke(
        app, ["train", str(dataset), "--name", "faq", "--set", "r=abc", "--detach", *data]
    )
    assert result.exit_code == 1
    assert "r must be a whole number, not 'abc'" in result.output
    assert "not supported between" not in result.output
    listing = CliRunner().invoke(app, ["jobs", *data])
    assert "no training jobs yet" in listing.output


def test_a_refused_dataset_leaves_no_job_and_a_cut_line_says_where_it_ends(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in fact_records(10)]
    question = "Who makes the Zorblax 9000, and where is the company that makes it, please? " * 2
    lines[6] = json.dumps({"messages": [{"role": "user", "content": question}]})[:118]
    dataset = tmp_path / "faq.jsonl"
    dataset.write_text("\n".join(lines) + "\n")
    data = ["--data-dir", str(tmp_path / "data")]
    result = CliRunner().invoke(app, ["train", str(dataset), "--name", "faq", *data])
    assert result.exit_code == 1
    assert (
        "line 7: bad JSON (Unterminated string starting at column 43; "
        "the line ends at character 118)"
    ) in result.output
    assert "no training jobs yet" in CliRunner().invoke(app, ["jobs", *data]).output
