"""The command line asks the running server: the same results as in process (search, show,
ls, status, ask with passages given, jobs, adapters), an owner-only socket, the fallback when the server
is killed -9 (its socket removed), and nothing heavy imported on the way."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LLM_ENG, server_env, wait_until

REAL = Path(__file__).resolve().parents[1] / "data" / "real-project" / "flask" / "docs"
QUESTION = "What do blueprints record?"
PASSAGE = (
    "The basic concept of blueprints is that they record operations to execute when "
    "registered on an application."
)

pytestmark = pytest.mark.slow


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LLM_ENG, *args], env=server_env(), capture_output=True, text=True, timeout=600
    )


def results(data: Path, docs: Path, only: tuple[str, ...] = ()) -> dict[str, tuple[Any, str]]:
    """Each command's --json output (what varies run to run left out) and its stderr."""
    asked = {
        "search": ("search", "register a blueprint with a url prefix", "--rerank"),
        "show": ("show", f"{docs / 'config.rst'}:10-30"),
        "ls": ("ls", "--limit", "3"),
        "status": ("status",),
        "ask": ("ask", QUESTION, "-c", PASSAGE, "--max-tokens", "40"),
        "jobs": ("jobs",),
        "adapters": ("adapters",),
    }
    out: dict[str, tuple[Any, str]] = {}
    for name, args in asked.items():
        if only and name not in only:
            continue
        done = run(*args, "-v", "--json", "--data-dir", str(data))
        assert done.returncode == 0, (name, done.stderr)
        found = json.loads(done.stdout)
        if name == "search":
            found.pop("took_ms")
        if name == "status":  # who asks differs (a reader beside the server, or the server)
            found = {k: found[k] for k in ("documents", "chunks", "failed", "data_dir")}
        if name == "ask":
            for varies in (
                "retrieval_ms",
                "first_token_ms",
                "generation_ms",
                "tokens_per_s",
                "took_ms",
            ):
                found.pop(varies)
        out[name] = (found, done.stderr)
    return out


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_commands_get_the_servers_results_and_work_in_process_when_it_is_killed(
    tmp_path: Path, transport: str
) -> None:
    """``unix``: the socket in the data folder; ``tcp``: loopback with a token in a file (what
    a platform without UNIX sockets gets)."""
    docs, data = tmp_path / "docs", tmp_path / "data"
    shutil.copytree(REAL, docs)
    assert run("ingest", str(docs), "--data-dir", str(data)).returncode == 0
    # Over TCP the transport is what is new: three commands show it (every command's
    # results through the server are compared over the UNIX socket).
    only = () if transport == "unix" else ("search", "status", "jobs")
    here = results(data, docs, only)
    assert all("working in process: no server runs" in err for _, err in here.values())

    server = subprocess.Popen(
        [LLM_ENG, "serve", "--data-dir", str(data)],
        env=server_env(LLM_ENG_CLI_TRANSPORT=transport), stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    sock = data / ("cli.sock" if transport == "unix" else "cli.endpoint")
    try:
        wait_until(sock.exists, f"the server's {transport} endpoint {sock}")
        mode = sock.stat().st_mode
        assert stat.S_IMODE(mode) == 0o600
        assert stat.S_ISSOCK(mode) if transport == "unix" else stat.S_ISREG(mode)
        there = results(data, docs, only)
        for name, (found, err) in there.items():
            assert f"answered by the server on {sock}" in err, (name, err)
            assert found == here[name][0], name

        code = [
            sys.executable, "-c",
            "import sys\n"
            "from llm_engineering.cli.app import main\n"
            f"sys.argv = ['llm-eng', 'search', 'blueprint', '-v', '--data-dir', {str(data)!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = ('torch', 'chromadb', 'sentence_transformers', 'llama_cpp', 'transformers', 'numpy')\n"
            "print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)",
        ]  # fmt: skip
        code[2] = "import json\n" + code[2]
        done = subprocess.run(code, env=server_env(), capture_output=True, text=True, timeout=120)
        assert "answered by the server" in done.stderr and done.stderr.strip().endswith("[]"), (
            done.stderr
        )
        if transport == "tcp":  # a wrong token is not let in: the command works in process
            endpoint = json.loads(sock.read_text())
            sock.write_text(json.dumps({**endpoint, "token": "0" * 64}))
            wrong = run("status", "-v", "--data-dir", str(data))
            assert "working in process: wrong token" in wrong.stderr, wrong.stderr
            sock.write_text(json.dumps(endpoint))
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
    assert sock.exists()  # a killed server leaves it behind
    done = run("search", "register a blueprint with a url prefix", "--rerank", "-v", "--json",
               "--data-dir", str(data))  # fmt: skip
    assert f"removed {sock}: the server that made it is gone" in done.stderr
    assert not sock.exists()
    after = json.loads(done.stdout)
    after.pop("took_ms")
    assert after == here["search"][0]
