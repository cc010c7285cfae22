"""How fast the watched folder follows the disk.

1. Drop latency: a real ``llm-eng serve --watch DIR`` over stdio; 50 small Markdown files
   are written one at a time, and for each the time from the file's close to the first
   ``search_docs`` call that returns it is measured (p50/p95; targets 1.5 s / 3 s). As a
   baseline, the same kind of file indexed directly (``IndexService.sync``) in this process.
2. Start-up reconcile of an unchanged 5,000-file folder (what a restart costs): repair +
   reconcile, in files/s (target >= 1,000), against a raw ``os.scandir`` + ``stat`` walk
   of the same folder.
3. Start to first answer: time from launching ``llm-eng serve --watch DIR`` over stdio to
   its first ``tools/list`` answer while a 1,000-file folder indexes (target <= 2 s), with
   the same server on an empty folder as the baseline, and whether indexing was still
   pending when the answer came (it should be: the server answers before it has indexed).

4. Churn: a real ``llm-eng serve --http --watch DIR`` over 40 files; 8 MCP clients search
   in a loop (keyword, each query naming one of 20 files about to be deleted) while 100
   files are added and those 20 deleted, one change every 50 ms. Reported: search latency
   p50/p95 during the churn, and for each deleted file the time from its deletion to the
   start of the last search that still returned it (0 when none did; target p95 <= 1.5 s).

Usage: python benchmarks/watch_latency.py [--files 50] [--reconcile-files 5000] [--start-files 1000]
       [--only churn]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

LLM_ENG = str(Path(sys.executable).parent / "llm-eng")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


async def drop_latencies(folder: Path, data_dir: Path, count: int) -> list[float]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=LLM_ENG,
        args=[
            "serve",
            "--watch",
            str(folder),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "WARNING",
        ],
        env={**os.environ, "LLM_ENG_CONFIG": ""},
    )
    latencies = []
    async with Client(params, read_timeout_seconds=120) as client:
        with anyio.fail_after(120):
            while True:
                status = (await client.call_tool("index_status", {})).structured_content
                if (
                    status["watching"]
                    and status["models"]["embedding_loaded"]
                    and status["pending"] == 0
                ):
                    break
                await anyio.sleep(0.1)
        for i in range(count):
            token = f"zq{i}marker{os.getpid()}"
            path = folder / f"drop{i:03}.md"
            with path.open("w") as handle:
                handle.write(
                    f"# Dropped note {i}\n\nThis note carries the word {token} and little else.\n"
                )
            closed = time.perf_counter()
            with anyio.fail_after(60):
                while True:
                    result = await client.call_tool(
                        "search_docs", {"query": token, "mode": "keyword", "top_k": 1}
                    )
                    hits = result.structured_content["results"]
                    if hits and hits[0]["path"] == str(path):
                        break
                    await anyio.sleep(0.01)
            latencies.append(time.perf_counter() - closed)
    return latencies


def _serve_params(folder: Path, data_dir: Path):  # type: ignore[no-untyped-def]
    from mcp.client.stdio import StdioServerParameters

    return StdioServerParameters(
        command=LLM_ENG,
        args=["serve", "--watch", str(folder), "--data-dir", str(data_dir)],
        env={**os.environ, "LLM_ENG_CONFIG": "", "LLM_ENG_LOG_LEVEL": "WARNING"},
    )


async def first_answer(folder: Path, data_dir: Path) -> tuple[float, int]:
    """Seconds from launching the server to its first tools/list answer; files then pending."""
    from mcp import Client

    started = time.perf_counter()
    async with Client(_serve_params(folder, data_dir), read_timeout_seconds=120) as client:
        await client.list_tools()
        seconds = time.perf_counter() - started
        status = (await client.call_tool("index_status", {})).structured_content
        return seconds, int(status["pending"]) + (0 if status["documents"] else 1)


def start_to_first_answer(files: int, repeats: int = 3) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="llm-eng-start-"))
    try:
        big, empty = work / "big", work / "empty"
        big.mkdir()
        empty.mkdir()
        for i in range(files):
            body = " ".join(f"w{i}n{j}" for j in range(30))
            (big / f"doc{i:04}.md").write_text(f"# Document {i}\n\n{body}\n")
        loaded, baseline, still_pending = [], [], []
        for r in range(repeats):
            seconds, pending = anyio.run(first_answer, big, work / f"data{r}")
            loaded.append(seconds)
            still_pending.append(pending > 0)
            baseline.append(anyio.run(first_answer, empty, work / f"empty{r}")[0])
        return {
            "start_files": files,
            "start_to_tools_list_s": round(statistics.median(loaded), 3),
            "start_to_tools_list_empty_folder_s": round(statistics.median(baseline), 3),
            "start_big_vs_empty": round(statistics.median(loaded) / statistics.median(baseline), 3),
            "start_still_indexing_when_answered": sum(still_pending),
            "start_repeats": repeats,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def direct_index_seconds(count: int) -> list[float]:
    """Baseline: the same small file indexed in-process with no watcher in between."""
    from llm_engineering.config import load_settings
    from llm_engineering.index_store.service import IndexService

    work = Path(tempfile.mkdtemp(prefix="llm-eng-direct-"))
    try:
        folder = work / "docs"
        folder.mkdir()
        service = IndexService(load_settings(data_dir=work / "data"))
        service.parsers().start(service.parse_config())
        service.ingest([folder])
        times = []
        for i in range(count):
            path = folder / f"direct{i:03}.md"
            path.write_text(
                f"# Direct note {i}\n\nThis note carries the word zz{i}direct and little else.\n"
            )
            started = time.perf_counter()
            service.sync([path])
            times.append(time.perf_counter() - started)
        service.close()
        return times
    finally:
        shutil.rmtree(work, ignore_errors=True)


def reconcile(count: int) -> dict[str, float]:
    from llm_engineering.config import load_settings
    from llm_engineering.index_store.service import IndexService

    work = Path(tempfile.mkdtemp(prefix="llm-eng-reconcile-"))
    try:
        folder = work / "docs"
        for i in range(count):
            sub = folder / f"d{i // 500:02}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"n{i:05}.md").write_text(f"# Note {i}\n\nshort note number {i}\n")
        settings = load_settings(data_dir=work / "data", watch=[folder])
        first = IndexService(settings)
        report = first.ingest([folder])
        assert report.added == count, report
        first.close()
        del first

        # a restart: a new service on the same data folder, repair then reconcile
        service = IndexService(settings)
        started = time.perf_counter()
        service.repair()
        report = service.ingest([folder])
        seconds = time.perf_counter() - started
        assert report.unchanged == count and report.chunks_embedded == 0
        service.close()

        started = time.perf_counter()
        stack, seen = [folder], 0
        while stack:
            for entry in os.scandir(stack.pop()):
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    entry.stat()
                    seen += 1
        walk_seconds = time.perf_counter() - started
        assert seen == count
        return {
            "reconcile_files": count,
            "reconcile_s": round(seconds, 3),
            "reconcile_files_per_s": round(count / seconds),
            "raw_walk_files_per_s": round(count / walk_seconds),
            "reconcile_vs_raw_walk": round(walk_seconds / seconds, 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def churn(folder: Path, data_dir: Path) -> dict[str, float]:
    import socket

    import httpx
    from mcp import Client

    doomed = []
    for i in range(40):
        path = folder / f"base{i:03}.md"
        path.write_text(f"# Base {i}\n\nchurnword base file keeps the token zqbase{i}x.\n")
        if i < 20:
            doomed.append((path, f"zqbase{i}x"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mcp"
    env = {**os.environ, "LLM_ENG_CONFIG": "", "LLM_ENG_LOG_LEVEL": "WARNING"}
    import subprocess

    server = subprocess.Popen(
        [LLM_ENG, "serve", "--http", "--port", str(port), "--watch", str(folder),
         "--data-dir", str(data_dir)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with anyio.fail_after(180):
            while True:
                try:
                    httpx.get(url, timeout=1.0)
                    break
                except httpx.TransportError:
                    await anyio.sleep(0.2)
        async with Client(url) as client:
            with anyio.fail_after(300):
                while True:
                    status = (await client.call_tool("index_status", {})).structured_content
                    if status["documents"] >= 40 and status["pending"] == 0:
                        break
                    await anyio.sleep(0.2)
        deleted_at: dict[str, float] = {}
        last_seen: dict[str, float] = {}
        latencies: list[float] = []
        done = anyio.Event()

        async def searcher(offset: int) -> None:
            async with Client(url) as client:
                i = offset
                while not done.is_set():
                    _, token = doomed[i % len(doomed)]
                    started = time.perf_counter()
                    result = await client.call_tool(
                        "search_docs",
                        {"query": f"churnword {token}", "mode": "keyword", "top_k": 3},
                    )
                    latencies.append((time.perf_counter() - started) * 1000)
                    for hit in result.structured_content["results"]:
                        last_seen[hit["path"]] = max(last_seen.get(hit["path"], 0.0), started)
                    i += 8

        async def writer() -> None:
            await anyio.sleep(2)
            for i in range(100):
                (folder / f"new{i:03}.md").write_text(f"# New {i}\n\nchurnword fresh file {i}.\n")
                if i % 5 == 0:
                    path, _ = doomed[i // 5]
                    path.unlink()
                    deleted_at[str(path)] = time.perf_counter()
                await anyio.sleep(0.05)
            await anyio.sleep(5)
            done.set()

        async with anyio.create_task_group() as group:
            for offset in range(8):
                group.start_soon(searcher, offset)
            group.start_soon(writer)
    finally:
        server.terminate()
        server.wait(30)
    lingers = [max(0.0, last_seen.get(p, 0.0) - t) for p, t in deleted_at.items()]
    return {
        "deleted_files_found_before": sum(p in last_seen for p in deleted_at),
        "churn_searches": len(latencies),
        "churn_search_p50_ms": round(statistics.median(latencies), 1),
        "churn_search_p95_ms": round(percentile(latencies, 95), 1),
        "delete_to_gone_p50_s": round(statistics.median(lingers), 3),
        "delete_to_gone_p95_s": round(percentile(lingers, 95), 3),
        "delete_to_gone_max_s": round(max(lingers), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--reconcile-files", type=int, default=5000)
    parser.add_argument("--start-files", type=int, default=1000)
    parser.add_argument("--only", choices=["churn"], default=None)
    args = parser.parse_args()

    from llm_engineering.logs import setup_logging

    setup_logging("WARNING")
    work = Path(tempfile.mkdtemp(prefix="llm-eng-churn-"))
    try:
        (work / "watched").mkdir()
        churned = anyio.run(churn, work / "watched", work / "data")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.only == "churn":
        print(json.dumps(churned, indent=2))
        return
    work = Path(tempfile.mkdtemp(prefix="llm-eng-watch-"))
    try:
        folder = work / "watched"
        folder.mkdir()
        latencies = anyio.run(drop_latencies, folder, work / "data", args.files)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    direct = direct_index_seconds(20)
    results = {
        "drops": len(latencies),
        "drop_to_hit_p50_s": round(statistics.median(latencies), 3),
        "drop_to_hit_p95_s": round(percentile(latencies, 95), 3),
        "drop_to_hit_max_s": round(max(latencies), 3),
        "direct_index_p50_s": round(statistics.median(direct), 3),
        **reconcile(args.reconcile_files),
        **start_to_first_answer(args.start_files),
        **churned,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
