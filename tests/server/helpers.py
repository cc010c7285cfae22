"""Starting real servers for the end-to-end tests, and waiting on them with deadlines."""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import anyio
import httpx
from mcp import Client
from mcp.client.client import ConnectMode
from mcp.client.session import MessageHandlerFnT
from mcp.client.stdio import StdioServerParameters

from tests.conftest import LLM_ENG, describe, server_env


def stdio_client(
    data_dir: Path,
    *args: str,
    mode: ConnectMode = "auto",
    message_handler: MessageHandlerFnT | None = None,
    **env: str,
) -> Client:
    """An MCP client that launches ``llm-eng serve`` over stdio, as Claude Desktop does.

    ``mode="legacy"`` speaks the handshake era (2025-11-25), as most hosts do today; the
    default takes the newest the server offers (2026-07-28).
    """
    params = StdioServerParameters(
        command=LLM_ENG,
        args=["serve", "--data-dir", str(data_dir), *args],
        env=server_env(**env),
    )
    return Client(params, read_timeout_seconds=120, mode=mode, message_handler=message_handler)


async def wait_for_status(
    client: Client, ready: Callable[[dict[str, Any]], bool], timeout: float = 180
) -> dict[str, Any]:
    """Poll ``index_status`` until ``ready(status)``; fail after ``timeout`` seconds.

    The failure names what was awaited and the last status seen, so a slow machine and a
    broken server are told apart.
    """
    last: dict[str, Any] | None = None
    try:
        with anyio.fail_after(timeout):
            while True:
                result = await client.call_tool("index_status", {})
                assert not result.is_error, result.content
                last = result.structured_content
                assert last is not None
                if ready(last):
                    return last
                await anyio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(
            f"index_status never satisfied {describe(ready)} within {timeout} s; last: {last}"
        ) from None


def indexed(documents: int) -> Callable[[dict[str, Any]], bool]:
    return lambda status: (
        status["documents"] + len(status["failed"]) >= documents and status["pending"] == 0
    )


async def search(client: Client, query: str, **args: Any) -> list[dict[str, Any]]:
    result = await client.call_tool("search_docs", {"query": query, **args})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return list(result.structured_content["results"])


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; its structured result."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


async def error_of(client: Client, tool: str, **arguments: Any) -> str:
    """Call a tool that must fail; the text of its error."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return " ".join(getattr(block, "text", "") for block in result.content)


def names(results: list[dict[str, Any]]) -> list[str]:
    return [Path(r["path"]).name for r in results]


@contextmanager
def running(
    command: list[str], ready_url: str | None = None, timeout: float = 180, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process; wait until ``ready_url`` answers (any HTTP status); stop it after.

    Its output goes to a temporary file: an unread pipe fills up and freezes a chatty server.
    """
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, env=server_env(**env), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            if ready_url is not None:
                _wait_until_answering(process, log, ready_url, timeout)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_answering(
    process: subprocess.Popen[bytes], log: IO[bytes], url: str, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")[-2000:]
            raise AssertionError(f"the server exited with {process.returncode}: {output}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.1)


def rss_mib(pid: int) -> float:
    """A process's resident memory (VmRSS), in MiB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(p) for p in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


class PeakMemory:
    """The largest VmRSS of a process, and of any one of its child processes, sampled on a
    thread every 0.1 s while the ``with`` block runs (Linux /proc)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.process_mib = 0.0
        self.child_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.process_mib = max(self.process_mib, rss_mib(self.pid))
            for child in children_of(self.pid):
                self.child_mib = max(self.child_mib, rss_mib(child))


async def wait_for_hit(
    client: Client, query: str, name: str, timeout: float = 300, **args: Any
) -> list[dict[str, Any]]:
    """Poll ``search_docs`` until a hit comes from the file ``name``; fail after ``timeout`` s."""
    last: list[str] = []
    try:
        with anyio.fail_after(timeout):
            while True:
                results = await search(client, query, **args)
                last = names(results)
                if name in last:
                    return results
                await anyio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(
            f"search_docs({query!r}) never found {name} within {timeout} s; last: {last}"
        ) from None
