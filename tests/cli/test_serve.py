"""`llm-eng serve` started by hand in a terminal: it says what it is, and stdout stays JSON-RPC."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import LLM_ENG, server_env, wait_until


@pytest.mark.slow
def test_serve_in_a_terminal_says_on_stderr_it_waits_for_a_client_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    terminal, its_end = pty.openpty()
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [LLM_ENG, "serve", "--data-dir", str(tmp_path / "data")],
            stdin=its_end, stdout=stdout, stderr=stderr, env=server_env(),
            # As a terminal starts it: Ctrl-C is a KeyboardInterrupt, not ignored.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
    os.close(its_end)
    try:
        wait_until(lambda: "writes the index" in err.read_text(), "the server started", 300)
        note = err.read_text()
        assert "llm-eng serve is an MCP server on stdio: it waits for an MCP client" in note
        assert "`llm-eng serve --http`" in note and "Connect your assistant" in note
        os.write(terminal, b'{"jsonrpc": "2.0", "id": 7, "method": "ping"}\n')
        wait_until(lambda: b'"id":7' in out.read_bytes(), "the answer to a ping", 120)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=300) == 0, err.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(terminal)
    # Only JSON-RPC on stdout, the note included nowhere there.
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [7]
