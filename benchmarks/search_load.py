"""Searches/s with 1, 4 and 8 concurrent clients over streamable HTTP, against a real server.

SciFact abstracts (``--docs``, default 1,000) are indexed once into a temporary data
folder; then ``llm-eng serve --http`` is started on it and, for each client count, that
many MCP clients (the SDK's own, one session each, in this process) call ``search_docs``
(hybrid, top 5, no rerank) with SciFact claims in a loop for ``--seconds``. Reported per
count: searches/s, p50 and p95 latency, and the throughput against one client (target: 8
clients >= 1.5x one client on 2 cores). The server batches the query embeddings of
searches that arrive together (``QueryBatcher``); ``--no-batching`` starts it with
``LLM_ENG_QUERY_BATCHING=0`` for the before figure.

Usage: python benchmarks/search_load.py [--docs 1000] [--seconds 20] [--clients 1 4 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scifact"
LLM_ENG = str(Path(sys.executable).parent / "llm-eng")
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingest_search import percentile, write_corpus  # noqa: E402  (shared with that benchmark)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_clients(url: str, clients: int, seconds: float, queries: list[str]) -> list[float]:
    from mcp import Client

    latencies: list[float] = []

    async def one(offset: int) -> None:
        async with Client(url) as client:
            await client.call_tool("search_docs", {"query": queries[offset], "top_k": 5})
            deadline = time.monotonic() + seconds
            i = offset
            while time.monotonic() < deadline:
                started = time.perf_counter()
                result = await client.call_tool(
                    "search_docs", {"query": queries[i % len(queries)], "top_k": 5}
                )
                assert not result.is_error, result.content
                latencies.append((time.perf_counter() - started) * 1000)
                i += clients

    async with anyio.create_task_group() as group:
        for offset in range(clients):
            group.start_soon(one, offset)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--no-batching", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="llm-eng-load-"))
    try:
        folder = work / "docs"
        write_corpus(args.data / "corpus.jsonl", folder, args.docs)
        env = {**os.environ, "LLM_ENG_CONFIG": ""}
        if args.no_batching:
            env["LLM_ENG_QUERY_BATCHING"] = "0"
        data_dir = work / "data"
        subprocess.run(
            [LLM_ENG, "ingest", str(folder), "--data-dir", str(data_dir)],
            check=True, env=env, capture_output=True,
        )  # fmt: skip
        queries = [json.loads(line)["text"] for line in (args.data / "queries.jsonl").open()]
        port = free_port()
        url = f"http://127.0.0.1:{port}/mcp"
        server = subprocess.Popen(
            [LLM_ENG, "serve", "--http", "--port", str(port), "--data-dir", str(data_dir)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    httpx.get(url, timeout=1.0)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.2)
            anyio.run(run_clients, url, 1, 3.0, queries)  # warm up: models load
            figures = {}
            for clients in args.clients:
                latencies = anyio.run(run_clients, url, clients, args.seconds, queries)
                figures[clients] = {
                    "searches_per_s": round(len(latencies) / args.seconds, 1),
                    "p50_ms": round(statistics.median(latencies), 1),
                    "p95_ms": round(percentile(latencies, 95), 1),
                }
            one = figures.get(1, {}).get("searches_per_s")
            for row in figures.values():
                if one:
                    row["vs_one_client"] = round(row["searches_per_s"] / one, 2)
            print(json.dumps({"batching": not args.no_batching, "clients": figures}, indent=2))
        finally:
            server.terminate()
            server.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
