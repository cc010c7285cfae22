"""Streamable HTTP: the same tools over /mcp, with Host/Origin checks and bearer tokens."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import FACTS, LLM_ENG, QUERIES, free_port, server_env
from tests.server.helpers import indexed, names, running, search, wait_for_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def serve_http(data_dir: Path, port: int, *args: str) -> list[str]:
    return [LLM_ENG, "serve", "--http", "--port", str(port), "--data-dir", str(data_dir), *args]


async def test_search_over_streamable_http(mixed_folder: Path, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with running(
        serve_http(tmp_path / "data", port, "--watch", str(mixed_folder)), ready_url=url
    ) as server:
        async with Client(url) as client:
            await wait_for_status(client, indexed(6))
            for kind, query in QUERIES.items():
                assert FACTS[kind][0] in names(await search(client, query, top_k=3)), kind
        answered_after_a_pause(server, f"http://127.0.0.1:{port}/static/dashboard.css")
        # JSON nested 100,000 deep is refused as a parse error, and the server goes on answering
        deep = "[" * 100_000 + "]" * 100_000
        response = httpx.post(url, content=deep, headers=HEADERS, timeout=120)
        assert response.status_code == 400 and "Parse error" in response.text, response.text
        assert httpx.post(url, json=INIT, headers=HEADERS).status_code == 200
        # a browser page from another site may not talk to the server
        response = httpx.post(url, json=INIT, headers={**HEADERS, "Origin": "http://evil.example"})
        assert response.status_code == 403
        # nor may a request that arrives under a foreign Host name (DNS rebinding)
        response = httpx.post(url, json=INIT, headers={**HEADERS, "Host": "evil.example"})
        assert response.status_code in (403, 421)
        # the server's own origin is fine
        response = httpx.post(
            url, json=INIT, headers={**HEADERS, "Origin": f"http://127.0.0.1:{port}"}
        )
        assert response.status_code == 200


def answered_after_a_pause(server: subprocess.Popen[bytes], url: str) -> None:
    """A request sent on a kept-alive connection while the server is stopped for longer than
    uvicorn's default keep-alive (5 s) is answered when it resumes, not reset (issue 34.13)."""
    with httpx.Client(timeout=120) as kept:
        assert kept.get(url).status_code == 200
        outcome: list[object] = []
        sender = threading.Thread(target=lambda: outcome.append(_status(kept, url)))
        os.kill(server.pid, signal.SIGSTOP)
        try:
            sender.start()
            time.sleep(8)  # the pause itself (the fault under test), not a wait for a state
        finally:
            os.kill(server.pid, signal.SIGCONT)
        sender.join(timeout=120)
    assert outcome == [200], outcome


def _status(client: httpx.Client, url: str) -> object:
    try:
        return client.get(url).status_code
    except httpx.HTTPError as exc:
        return repr(exc)


def test_a_non_loopback_bind_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    result = subprocess.run(
        serve_http(tmp_path / "data", free_port(), "--host", "0.0.0.0"),
        env=server_env(),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert b"LLM_ENG_TOKEN" in result.stderr and b"0.0.0.0" in result.stderr


async def test_a_non_loopback_bind_answers_401_without_the_token(
    mixed_folder: Path, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    command = serve_http(tmp_path / "data", port, "--host", "0.0.0.0", "--watch", str(mixed_folder))
    with running(command, ready_url=url, LLM_ENG_TOKEN="s3cret-token"):
        assert httpx.post(url, json=INIT, headers=HEADERS).status_code == 401
        wrong = httpx.post(url, json=INIT, headers={**HEADERS, "Authorization": "Bearer wrong"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
        authorized = httpx2.AsyncClient(
            headers={"Authorization": "Bearer s3cret-token"}, timeout=60
        )
        async with Client(streamable_http_client(url, http_client=authorized)) as client:
            await wait_for_status(client, indexed(6))
            assert names(await search(client, QUERIES["docx"], top_k=3))[0] == FACTS["docx"][0]
