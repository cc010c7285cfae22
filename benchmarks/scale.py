"""How every cost grows with the index: 10k, 100k and 1M chunks on this machine.

For each size, a folder of files is generated (``corpus``: Markdown, plain text and HTML of
realistic sizes, their sentences drawn from the SciFact abstracts and SQuAD paragraphs, so
BM25 sees real term statistics), indexed through the normal path (``llm-eng ingest``), and
measured:

- ingestion chunks/s and files/s, the model's cost excluded: vectors come from
  ``hash_embeddings.py`` (an OpenAI-compatible server of the packaged model's name and
  dimension, vectors from a hash of the text) through ``embedding_url``; the model's own
  rate is measured apart (``ingest_search.py``, ``embedding_precision.py``);
- an unchanged re-index (files/s), by ``llm-eng ingest`` again;
- a server on the existing index (``llm-eng serve`` over stdio, watching the folder):
  seconds from its start to its first answered ``search_docs``; then, once its start-up
  reconcile is done, p50/p95 of ``search_docs`` dense, keyword, hybrid and hybrid + rerank
  (the offline reranker) for SciFact claims, ``get_document``, the first and a deep
  ``list_documents`` page and a deep ``resources/list`` page (cursors 90% of the way in),
  the server's RSS (and its peak);
- the dashboard overview's render (in this process, on the same data folder);
- the size on disk of ``state.sqlite`` and of Chroma.

Growth is fitted between consecutive sizes as the exponent of size (0: constant, 1: linear).
Every run here uses the hash server; the output says so.

With ``--chroma-server`` the vectors go to a ``chroma run`` server (``chroma_url``) instead
of embedded Chroma, whose writes hold the GIL of the indexing process.

Usage: python benchmarks/scale.py [--sizes 10000 100000 1000000] [--root DIR] [--queries 60]
       [--chroma-server]
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import math
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
LLM_ENG = str(Path(sys.executable).parent / "llm-eng")
CHUNKS_PER_FILE = 2.0
"""About what the generated files make (256-token chunks; measured 1.9-2.1)."""
GENERATOR = "2"
"""Changes when the files generated change (a kept corpus of another version is made again)."""


# -- the corpus --------------------------------------------------------------------------


def sentences() -> list[str]:
    """Every sentence of the SciFact abstracts and the SQuAD paragraphs (about 60,000)."""
    found: list[str] = []
    split = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
    with (SHARED / "scifact" / "corpus.jsonl").open() as handle:
        for line in handle:
            found += split.split(json.loads(line)["text"])
    squad = json.loads((SHARED / "squad" / "dev-v2.0-part-a.json").read_text())
    for article in squad["data"]:
        for paragraph in article["paragraphs"]:
            found += split.split(paragraph["context"])
    return [s.strip() for s in found if len(s.split()) >= 4]


def _paragraphs(rng: random.Random, pool: list[str], count: int) -> list[str]:
    return [" ".join(rng.choice(pool) for _ in range(rng.randint(2, 6))) for _ in range(count)]


def write_file(path: Path, rng: random.Random, pool: list[str]) -> None:
    """One document of a lognormal length (median 5 paragraphs, a long tail)."""
    count = max(1, min(60, int(rng.lognormvariate(0.8, 0.7))))
    paragraphs = _paragraphs(rng, pool, count)
    title = " ".join(rng.choice(pool).split()[:6]).rstrip(".,;:")
    kind = path.suffix
    if kind == ".md":
        parts = [f"# {title}"]
        for n, text in enumerate(paragraphs):
            if n and n % 3 == 0:
                parts.append(f"## {' '.join(rng.choice(pool).split()[:4])}")
            parts.append(text)
        body = "\n\n".join(parts) + "\n"
    elif kind == ".html":
        inner = "".join(f"<p>{text}</p>\n" for text in paragraphs)
        body = f"<html><head><title>{title}</title></head><body><h1>{title}</h1>\n{inner}</body></html>\n"
    else:
        body = title + "\n\n" + "\n\n".join(paragraphs) + "\n"
    path.write_text(body)


def corpus(folder: Path, files: int, seed: int = 7) -> None:
    """``files`` documents under ``folder`` (1,000 per subfolder, 60% .md, 25% .txt, 15% .html);
    made once: a folder with its ``.complete`` marker is kept."""
    marker = folder / ".complete"
    if marker.is_file() and marker.read_text() == f"{files} {GENERATOR}":
        return
    shutil.rmtree(folder, ignore_errors=True)
    pool = sentences()
    rng = random.Random(seed)
    for n in range(files):
        sub = folder / f"section-{n // 1000:04d}"
        if n % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        kind = rng.choices([".md", ".txt", ".html"], [60, 25, 15])[0]
        write_file(sub / f"doc-{n:07d}{kind}", rng, pool)
    marker.write_text(f"{files} {GENERATOR}")


# -- helpers ----------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
    }


def disk_mb(path: Path) -> float:
    if path.is_file():
        return round(path.stat().st_size / 2**20, 1)
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return round(total / 2**20, 1)


def rss_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields.get("VmRSS", 0.0), "peak_rss_mb": fields.get("VmHWM", 0.0)}


def cursor_at(db: Path, depth: float) -> str:
    """A ``list_documents`` cursor (sorted by path) ``depth`` of the way into the indexed files,
    as the server encodes it (the last row of the page before)."""
    with sqlite3.connect(db) as con:
        total = con.execute("SELECT count(*) FROM files").fetchone()[0]
        path, mtime = con.execute(
            "SELECT path, mtime_ns FROM files ORDER BY path LIMIT 1 OFFSET ?",
            (int(total * depth),),
        ).fetchone()
    raw = json.dumps({"s": "path", "m": mtime, "p": path})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def hash_server() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "hash_embeddings.py")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, line.split()[-1]


def chroma_server(path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``chroma run`` on ``path`` (a free port), once it answers its heartbeat."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "chroma"), "run", "--path", str(path),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2).read()
            return process, url
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit(f"chroma run did not answer at {url}") from None
            time.sleep(0.5)


def ingest(docs: Path, data: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [LLM_ENG, "ingest", str(docs), "--data-dir", str(data)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"llm-eng ingest failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def ledger_counts(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as con:
        files = con.execute("SELECT count(*) FROM files WHERE status = 'indexed'").fetchone()[0]
        chunks = con.execute("SELECT count(*) FROM chunks").fetchone()[0]
    return int(files), int(chunks)


# -- the server --------------------------------------------------------------------------


async def serve_and_measure(
    docs: Path, data: Path, env: dict[str, str], queries: list[str], paths: list[str]
) -> dict[str, Any]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=LLM_ENG,
        args=["serve", "--data-dir", str(data), "--watch", str(docs), "--log-level", "WARNING"],
        env=env,
    )
    result: dict[str, Any] = {}
    started = time.perf_counter()
    async with Client(params, read_timeout_seconds=600) as client:
        first = await client.call_tool("search_docs", {"query": queries[0], "top_k": 5})
        result["start_to_first_search_s"] = round(time.perf_counter() - started, 2)
        assert not first.is_error, first
        pid = _server_pid(data)
        waited = time.perf_counter()
        while True:  # the start-up reconcile: measured apart, not beside the searches
            status = await _tool(client, "index_status", {})
            if status.get("last_ingest") and not status["building"] and not status["pending"]:
                break
            await anyio.sleep(0.5)
        result["startup_reconcile_s"] = round(time.perf_counter() - waited, 1)

        async def timed(name: str, arguments: dict[str, Any]) -> float:
            begun = time.perf_counter()
            answer = await client.call_tool(name, arguments)
            took = (time.perf_counter() - begun) * 1000
            assert not answer.is_error, (name, answer)
            return took

        modes = {
            "dense": {"mode": "dense"},
            "keyword": {"mode": "keyword"},
            "hybrid": {"mode": "hybrid"},
            "hybrid_rerank": {"mode": "hybrid", "rerank": True},
        }
        # Each query in every mode in turn: whatever the server does meanwhile (a checkpoint,
        # the page cache filling) weighs on every mode alike.
        times: dict[str, list[float]] = {label: [] for label in modes}
        for extra in modes.values():
            await timed("search_docs", {"query": queries[-1], "top_k": 5, **extra})
        for q in queries:
            for label, extra in modes.items():
                times[label].append(await timed("search_docs", {"query": q, "top_k": 5, **extra}))
        for label in modes:
            result[f"search_{label}_ms"] = percentiles(times[label])
        result["get_document_ms"] = percentiles(
            [await timed("get_document", {"path": p, "max_chars": 4000}) for p in paths]
        )
        db = data / "state.sqlite"
        first_pages = [await timed("list_documents", {"limit": 50}) for _ in range(20)]
        result["list_documents_first_ms"] = percentiles(first_pages)
        deep = cursor_at(db, 0.9)
        deep_pages = [
            await timed("list_documents", {"limit": 50, "cursor": deep}) for _ in range(20)
        ]
        result["list_documents_deep_ms"] = percentiles(deep_pages)
        modified = [
            await timed("list_documents", {"limit": 50, "sort": "modified"}) for _ in range(20)
        ]
        result["list_documents_by_modified_ms"] = percentiles(modified)
        listed = []
        for _ in range(20):
            begun = time.perf_counter()
            await client.list_resources(cursor=deep)
            listed.append((time.perf_counter() - begun) * 1000)
        result["resources_list_deep_ms"] = percentiles(listed)
        result["status_ms"] = percentiles([await timed("index_status", {}) for _ in range(20)])
        if pid:
            result.update(rss_mb(pid))
    return result


async def _tool(client: Any, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    answer = await client.call_tool(name, arguments)
    return dict(answer.structured_content or json.loads(answer.content[0].text))


def _server_pid(data: Path) -> int | None:
    """The writer's pid, from the data folder's lock file (the stdio server holds it)."""
    text = (data / "writer.lock").read_text().strip()
    return int(text) if text.isdigit() else None


def dashboard_render(docs: Path, data: Path, env: dict[str, str]) -> dict[str, float]:
    """The overview page's render, in this process (a read-only view of the data folder)."""
    import httpx

    from llm_engineering.adapters.service import TrainingService
    from llm_engineering.config import load_settings
    from llm_engineering.context import AppContext
    from llm_engineering.dashboard import create_dashboard
    from llm_engineering.index_store.service import IndexService

    for name in ("LLM_ENG_EMBEDDING_URL", "LLM_ENG_CHROMA_URL"):
        if name in env:
            os.environ[name] = env[name]
        else:
            os.environ.pop(name, None)
    settings = load_settings(data_dir=data, watch=[docs])
    index = IndexService(settings)
    app = AppContext(settings=settings, read_only=True, index=index, runner=None)
    app.training = TrainingService(settings)
    dashboard = create_dashboard(settings)
    dashboard.attach(app)

    async def measure() -> list[float]:
        transport = httpx.ASGITransport(app=dashboard.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as c:
            renders = []
            for _ in range(11):
                begun = time.perf_counter()
                response = await c.get("/")
                renders.append((time.perf_counter() - begun) * 1000)
                assert response.status_code == 200, response.text[:300]
            return renders[1:]

    renders = anyio.run(measure)
    index.close()
    return percentiles(renders)


# -- one size ----------------------------------------------------------------------------


def measure(
    size: int, root: Path, queries: list[str], rebuild: bool, chroma: bool = False
) -> dict[str, Any]:
    files = int(size / CHUNKS_PER_FILE)
    docs = root / f"docs-{size}"
    data = root / f"data-{size}{'-chroma-server' if chroma else ''}"
    begun = time.perf_counter()
    corpus(docs, files)
    print(f"[{size}] corpus of {files} files in {time.perf_counter() - begun:.0f} s", flush=True)
    server, url = hash_server()
    env = {**os.environ, "LLM_ENG_CONFIG": "", "LLM_ENG_EMBEDDING_URL": url}
    result: dict[str, Any] = {"target_chunks": size, "embeddings": f"hash server ({url})"}
    store = None
    fresh = rebuild or not (data / ".built").is_file()
    if fresh:
        shutil.rmtree(data, ignore_errors=True)
    if chroma:
        data.mkdir(parents=True, exist_ok=True)
        store, env["LLM_ENG_CHROMA_URL"] = chroma_server(data / "chroma-server")
        result["vectors"] = f"chroma run ({env['LLM_ENG_CHROMA_URL']})"
    try:
        if fresh:
            seconds, _ = ingest(docs, data, env)
            indexed, chunks = ledger_counts(data / "state.sqlite")
            result["ingest"] = {
                "seconds": round(seconds, 1),
                "files": indexed,
                "chunks": chunks,
                "chunks_per_s": round(chunks / seconds, 1),
                "files_per_s": round(indexed / seconds, 1),
            }
            (data / ".built").write_text(json.dumps(result["ingest"]))
        else:
            result["ingest"] = json.loads((data / ".built").read_text())
        print(f"[{size}] ingest {result['ingest']}", flush=True)
        indexed, chunks = ledger_counts(data / "state.sqlite")
        result["files"], result["chunks"] = indexed, chunks
        seconds, _ = ingest(docs, data, env)
        result["reindex_unchanged"] = {
            "seconds": round(seconds, 2),
            "files_per_s": round(indexed / seconds, 1),
        }
        print(f"[{size}] unchanged re-index {result['reindex_unchanged']}", flush=True)
        with sqlite3.connect(data / "state.sqlite") as con:
            rng = random.Random(3)
            every = [r[0] for r in con.execute("SELECT path FROM files WHERE status = 'indexed'")]
            paths = rng.sample(every, min(30, len(every)))
        result["server"] = anyio.run(serve_and_measure, docs, data, env, queries, paths)
        print(f"[{size}] server {result['server']}", flush=True)
        result["dashboard_overview_ms"] = dashboard_render(docs, data, env)
        result["disk_mb"] = {
            "state_sqlite": disk_mb(data / "state.sqlite"),
            "chroma": disk_mb(data / ("chroma-server" if chroma else "chroma")),
        }
    finally:
        for process in (server, store):
            if process is not None:
                process.terminate()
                process.wait()
    return result


def growth(results: list[dict[str, Any]]) -> dict[str, list[float]]:
    """For each figure, the exponent of size between consecutive sizes."""

    def figures(result: dict[str, Any]) -> dict[str, float]:
        server = result["server"]
        found = {
            "reindex_s": result["reindex_unchanged"]["seconds"],
            "start_to_first_search_s": server["start_to_first_search_s"],
            "rss_mb": server.get("rss_mb", 0.0),
            "dashboard_ms": result["dashboard_overview_ms"]["p50"],
        }
        for name, value in server.items():
            if isinstance(value, dict) and "p50" in value:
                found[name] = value["p50"]
        return found

    exponents: dict[str, list[float]] = {}
    for small, large in itertools.pairwise(results):
        a, b = figures(small), figures(large)
        ratio = large["chunks"] / small["chunks"]
        for name in a:
            if a[name] > 0 and b[name] > 0:
                exponents.setdefault(name, []).append(
                    round(math.log(b[name] / a[name]) / math.log(ratio), 2)
                )
    return exponents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--root", type=Path, default=ROOT / ".bench-cache" / "scale")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--rebuild", action="store_true", help="index again even if built")
    parser.add_argument(
        "--chroma-server", action="store_true", help="vectors in a `chroma run` server (chroma_url)"
    )
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    claims = [json.loads(line)["text"] for line in (SHARED / "scifact" / "queries.jsonl").open()]
    queries = random.Random(11).sample(claims, args.queries)
    results = []
    for size in args.sizes:
        results.append(measure(size, args.root, queries, args.rebuild, args.chroma_server))
        print(json.dumps(results[-1], indent=1), flush=True)
    print(json.dumps({"growth_exponents": growth(results)}, indent=1))


if __name__ == "__main__":
    main()
