"""The `llm-eng` command, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FACTS, LLM_ENG, server_env

pytestmark = pytest.mark.slow


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LLM_ENG, *args], env=server_env(**env), capture_output=True, text=True, timeout=300
    )


def test_ingest_search_and_status_from_the_command_line(mixed_folder: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    (mixed_folder / "broken.pdf").write_bytes(b"%PDF-1.4 nope")
    result = run("ingest", str(mixed_folder), "--data-dir", data)
    assert result.returncode == 3, result.stderr  # some files failed
    assert "added" in result.stdout and "broken.pdf" in result.stdout

    result = run("search", "saffron risotto", "--json", "-k", "2", "--data-dir", data)
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["results"]
    assert Path(hits[0]["path"]).name == FACTS["html"][0] and len(hits) == 2

    result = run("search", "glacier", "--mode", "keyword", "--file-type", "pdf", "--data-dir", data)
    assert result.returncode == 0 and "report.pdf" in result.stdout and "p. 2" in result.stdout

    result = run("status", "--json", "--data-dir", data)
    status = json.loads(result.stdout)
    assert status["documents"] == 6 and [Path(f["path"]).name for f in status["failed"]] == [
        "broken.pdf"
    ]

    result = run("ingest", str(mixed_folder), "--data-dir", data)
    assert "unchanged" in result.stdout


def test_show_and_ls_read_what_is_indexed_and_refuse_what_is_not(
    mixed_folder: Path, tmp_path: Path
) -> None:
    data = str(tmp_path / "data")
    (mixed_folder / "long.md").write_text(
        "# Long\n\n" + "\n".join(f"line {i}" for i in range(3, 101)) + "\n"
    )
    (mixed_folder / "broken.pdf").write_bytes(b"%PDF-1.4 nope")
    watch = ("--watch", str(mixed_folder), "--data-dir", data)
    result = run("show", "long.md:10-12", *watch)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "line 10\nline 11\nline 12\n"
    assert "lines 10-12 of 100; next: long.md:13" in result.stderr

    result = run("show", "report.pdf", "--page", "2", "--json", *watch)
    page = json.loads(result.stdout)
    assert page["page"] == 2 and FACTS["pdf"][1].split()[0] in page["text"]

    result = run("show", "/etc/passwd", *watch)
    assert result.returncode == 1 and "outside the watched folders" in result.stderr
    result = run("show", "broken.pdf", *watch)
    assert result.returncode == 1 and "could not be indexed" in result.stderr

    result = run("ls", "--json", *watch)
    listing = json.loads(result.stdout)
    assert listing["totals"] == {"indexed": 7, "pending": 0, "failed": 1}
    result = run("ls", "--status", "failed", *watch)
    assert "broken.pdf" in result.stdout and "not a readable PDF" in result.stdout

    # Reading an indexed folder loads no model, and the failed file is not parsed again.
    code = (
        "import sys; from llm_engineering.cli import main; sys.argv = ['llm-eng', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('torch', 'sentence_transformers', 'transformers', 'nltk', 'llama_cpp')\n"
        "print('imported:', [m for m in heavy if m in sys.modules], file=sys.stderr)"
    )
    for command in (["ls"], ["show", "long.md:1-3"], ["show", "broken.pdf"], ["status"]):
        result = subprocess.run(
            [sys.executable, "-c", code, *command, *watch],
            env=server_env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert "imported: []" in result.stderr, (command, result.stderr)


def test_bad_arguments_exit_with_a_message(tmp_path: Path) -> None:
    result = run("search", "x", "--mode", "fuzzy", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "unknown mode" in result.stderr
    result = run("ingest", str(tmp_path / "missing"), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 1 and "no such file or folder" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("chunk_sise = 1\n")
    result = run("status", "--config", str(bad))
    assert result.returncode == 2 and "chunk_sise" in result.stderr


def test_help_does_not_import_the_heavy_libraries() -> None:
    code = (
        "import sys, llm_engineering.cli;"
        "heavy = [m for m in ('torch', 'chromadb', 'sentence_transformers', 'llama_cpp', 'transformers') if m in sys.modules];"
        "print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
    assert run("--help").returncode == 0


def test_ask_prints_one_answer_and_says_why_when_it_is_not_the_models_reply(tmp_path: Path) -> None:
    """The reply is streamed only to a terminal (transiently); piped, the answer is printed
    once, with a status line; any other answer than the model's own says what happened and shows
    the passage."""
    data = str(tmp_path / "data")
    passage = "The Kestrel line of kettles is made in Lyon by Maison Ferro since 1931."
    result = run("ask", "Who makes the Kestrel kettles?", "-c", passage, "--data-dir", data,
                 "--max-tokens", "48")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    statuses = ("answered", "extracted", "unsupported", "not_in_context")
    status = [line for line in lines if line.startswith(tuple(f"{s};" for s in statuses))]
    assert len(status) == 1 and "llama.cpp:" in status[0], result.stdout
    answer = lines[0]
    assert result.stdout.count(answer) == 1 and answer not in result.stderr  # shown once
    if not status[0].startswith("answered"):  # what happened, and the passage it read
        assert "Passages" in lines and "  [1] (given passage)" in lines, result.stdout
    if status[0].startswith(("extracted", "unsupported")):
        assert "the model replied" in result.stdout
