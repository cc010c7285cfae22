"""Feedback wherever the work is long, and careless input met early (issue 30, items 3-5):
piped progress lines, Ctrl-C on ingest, the bar's ETA, a wrong path that makes nothing, a busy
port, a misspelt LLM_ENG_* variable, ls with nothing to list or a long cursor."""

from __future__ import annotations

import io
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from llm_engineering.config.settings import unknown_env
from tests.cli.test_index import with_terminal_stderr
from tests.conftest import LLM_ENG, server_env, wait_until
from tests.test_cli import run

WORDS = [
    "river",
    "bank",
    "ledger",
    "orbit",
    "copper",
    "lantern",
    "harbor",
    "meadow",
    "signal",
    "quarry",
    "violet",
    "cipher",
    "granite",
    "falcon",
    "tundra",
    "beacon",
    "saddle",
    "prism",
    "willow",
    "ember",
]


def write_notes(folder: Path, count: int) -> None:
    rng = random.Random(30)
    folder.mkdir(parents=True)
    for i in range(count):
        text = " ".join(rng.choice(WORDS) for _ in range(120))
        (folder / f"note-{i:04}.md").write_text(f"# Note {i}\n\n{text}.\n")


def test_piped_progress_is_a_line_every_few_seconds_with_files_chunks_and_rate(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from llm_engineering.cli.progress import file_progress

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with file_progress(chunks=lambda: 42, every_s=0.05) as progress:
        progress(3, 10, "/docs/c.md")
        wait_until(lambda: "indexing:" in err.getvalue(), "a progress line on piped stderr")
    line = err.getvalue().splitlines()[0]
    assert line.startswith("indexing: 3 of 10 files, 42 chunks, ") and "files/s" in line
    assert line.endswith("last /docs/c.md")


@pytest.mark.slow
def test_ctrl_c_on_ingest_says_what_was_done_and_the_next_ingest_goes_on(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", str(tmp_path / "data")
    write_notes(docs, 400)
    process = subprocess.Popen(
        [LLM_ENG, "ingest", str(docs), "--data-dir", data],
        env=server_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # An xdist worker may run with SIGINT ignored, and a child inherits that: the ingest
        # then ran on through the test's Ctrl-C (as test_serve.py and test_train.py knew).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert process.stderr is not None
    seen: list[str] = []

    def progress_line() -> bool:
        seen.append(process.stderr.readline())  # type: ignore[union-attr]
        return seen[-1].startswith("indexing:") or process.poll() is not None

    wait_until(progress_line, "the first piped progress line of a 400-file ingest", timeout=600)
    assert process.poll() is None, "the ingest ended before its first progress line"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, (out, err)
    assert "interrupted: " in err and "the same `llm-eng ingest` goes on from there" in err
    again = run("ingest", str(docs), "--data-dir", data)
    assert again.returncode == 0, again.stderr
    listed = run("ls", "--limit", "500", "--json", "--data-dir", data)
    import json

    page = json.loads(listed.stdout)
    assert page["totals"] == {"indexed": 400, "pending": 0, "failed": 0}


@pytest.mark.slow
def test_the_ingest_bar_shows_an_eta(tmp_path: Path) -> None:
    write_notes(tmp_path / "docs", 30)
    done, shown = with_terminal_stderr(
        "ingest", str(tmp_path / "docs"), "--data-dir", str(tmp_path / "data")
    )
    assert done.returncode == 0 and "eta" in shown


def test_a_wrong_path_or_a_busy_port_makes_nothing_in_the_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    wrong = run("ingest", str(tmp_path / "no-such-folder"), "--data-dir", str(data))
    assert wrong.returncode == 1 and "no such file or folder" in wrong.stderr
    assert not data.exists()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run("serve", "--http", "--port", str(port), "--data-dir", str(data))
    assert busy.returncode == 2
    assert f"port {port} is in use" in busy.stderr and "--port" in busy.stderr
    assert "serving" not in busy.stderr and not data.exists()


def test_a_misspelt_environment_variable_is_named_with_the_nearest_setting(tmp_path: Path) -> None:
    assert unknown_env({"LLM_ENG_CHUNK_SISE": "3", "LLM_ENG_CONFIG": "", "HOME": "/"}) == [
        "LLM_ENG_CHUNK_SISE (did you mean LLM_ENG_CHUNK_SIZE?)"
    ]
    assert unknown_env({"LLM_ENG_ZZZ": "1"}) == ["LLM_ENG_ZZZ"]
    done = run("status", "--data-dir", str(tmp_path / "data"), LLM_ENG_CHUNK_SISE="3")
    assert done.returncode == 0
    assert "LLM_ENG_CHUNK_SISE (did you mean LLM_ENG_CHUNK_SIZE?)" in done.stderr


@pytest.mark.slow
def test_ls_says_when_nothing_has_a_status_and_never_wraps_a_cursor(tmp_path: Path) -> None:
    write_notes(tmp_path / "docs", 3)
    data = ["--data-dir", str(tmp_path / "data")]
    assert run("ingest", str(tmp_path / "docs"), *data).returncode == 0
    none = run("ls", "--status", "failed", *data)
    assert none.returncode == 0 and none.stdout.strip() == "no failed files"
    narrow = run("ls", "--limit", "1", *data, COLUMNS="20")
    more = [line for line in narrow.stderr.splitlines() if line.startswith("more: --cursor ")]
    assert len(more) == 1, narrow.stderr
    cursor = more[0].removeprefix("more: --cursor ")
    assert len(cursor) > 20  # longer than the terminal, and still one line
    second = run("ls", "--limit", "1", "--cursor", cursor, *data)
    assert second.returncode == 0 and "note-0001.md" in second.stdout
