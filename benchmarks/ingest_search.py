"""Ingestion throughput, re-index speed and search latency on the SciFact corpus.

Writes every SciFact abstract as a Markdown file, then measures, in one process:

1. chunks/s of the whole ingestion pipeline (read, parse, chunk, hash, embed, write Chroma
   and SQLite) against plain ``SentenceTransformer.encode`` of the very same chunk texts
   (the ratio is the figure; target >= 0.85), and the embedder alone (the packaged model
   runs with torch alone, ``bert_encoder.py``) against the same baseline;
2. re-indexing the unchanged corpus, in files/s (target >= 1,000);
3. ``search_docs`` latency, p50/p95 over 200 SciFact claims, in-process and over stdio MCP
   against a real ``llm-eng serve`` (targets: stdio p50 <= 2x in-process p50 and <= 50 ms).

With ``--server``, the same folder is also ingested through an embedding server
(``embedding_url``): ``python -m llama_cpp.server --embedding true`` over a GGUF of the
packaged model (made with the llama.cpp converter ``make install`` fetches), once per
number of requests in flight (``--in-flight 1,2,4``), each into a fresh data folder;
reported as chunks/s, as a ratio to the in-process pipeline above, and as a ratio to the
server's own rate (plain ``POST /v1/embeddings`` of the same chunk texts, one request at a
time, in this process) for each ``--batch-sizes`` value.

Usage: python benchmarks/ingest_search.py [--data ../shared/data/scifact] [--limit N]
       [--server [--in-flight 1,2,4] [--batch-sizes 32] [--server-threads N]]
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

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scifact"
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def write_corpus(corpus: Path, folder: Path, limit: int | None) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    with corpus.open() as handle:
        for line in handle:
            doc = json.loads(line)
            (folder / f"{doc['_id']}.md").write_text(f"# {doc['title']}\n\n{doc['text']}\n")
            count += 1
            if limit and count >= limit:
                break
    return count


def chunk_texts(service, folder: Path) -> list[str]:  # type: ignore[no-untyped-def]
    """The embedding texts the pipeline produced for these files, read back from SQLite."""
    from llm_engineering.index_store.read.chunking import Chunk

    rows = service.ledger.db.execute(
        "SELECT c.text, c.heading FROM chunks c WHERE substr(c.path, 1, ?) = ? ORDER BY c.path, c.ordinal",
        (len(str(folder)) + 1, str(folder) + "/"),
    ).fetchall()
    return [Chunk(text, 0, heading).embedding_text() for text, heading in rows]


async def stdio_latencies(data_dir: Path, queries: list[str]) -> list[float]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=str(Path(sys.executable).parent / "llm-eng"),
        args=["serve", "--data-dir", str(data_dir), "--log-level", "WARNING"],
        env={**os.environ, "LLM_ENG_CONFIG": ""},
    )
    latencies = []
    async with Client(params, read_timeout_seconds=120) as client:
        for query in queries[:5]:  # warm-up: model load, caches
            await client.call_tool("search_docs", {"query": query})
        for query in queries:
            started = time.perf_counter()
            result = await client.call_tool("search_docs", {"query": query, "top_k": 5})
            latencies.append((time.perf_counter() - started) * 1000)
            assert not result.is_error, result.content
    return latencies


def raw_server_rate(url: str, texts: list[str], batch: int) -> float:
    """Texts/s of plain ``POST /v1/embeddings`` calls, ``batch`` texts each, one at a time:
    what the server itself gives, without our client."""
    import httpx

    with httpx.Client(base_url=url, timeout=900) as client:
        started = time.perf_counter()
        for start in range(0, len(texts), batch):
            response = client.post("/v1/embeddings", json={"input": texts[start : start + batch]})
            response.raise_for_status()
        return len(texts) / (time.perf_counter() - started)


def server_runs(
    folder: Path,
    work: Path,
    levels: list[int],
    threads: int,
    in_process_rate: float,
    texts: list[str],
    batch_sizes: list[int],
) -> dict[str, object]:
    """Ingest ``folder`` through a llama.cpp embedding server at each number of requests in
    flight and batch size, against the server's own rate for the same texts (``texts``)."""
    from llm_engineering.config import load_settings
    from llm_engineering.index_store.service import IndexService
    from tests.conftest import free_port
    from tests.index_store.embedding_server import (
        convert_packaged_model,
        converter_missing,
        server_command,
    )
    from tests.server.helpers import running

    missing = converter_missing()
    if missing:
        raise SystemExit(missing)
    gguf = convert_packaged_model(work, "f32")  # f32: faster than f16 on a CPU without f16 units
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    runs: dict[str, object] = {"server_threads": threads}
    with running(server_command(gguf, port, threads), ready_url=f"{url}/v1/models", timeout=300):
        raw_server_rate(url, texts[:8], 8)  # warm up
        for batch in batch_sizes:
            raw = raw_server_rate(url, texts, batch)
            runs[f"raw_server_batch_{batch}_texts_per_s"] = round(raw, 1)
        for level, batch in [(level, batch) for batch in batch_sizes for level in levels]:
            settings = load_settings(
                data_dir=work / f"server-{level}-{batch}", embedding_url=url,
                embedding_in_flight=level, embedding_batch_size=batch, server_timeout=900,
                config_file=None,
            )  # fmt: skip
            service = IndexService(settings)
            service.embedder().embed_documents(["warm up the server"] * 8)
            service.parsers().start(service.parse_config())
            started = time.perf_counter()
            report = service.ingest([folder])
            seconds = time.perf_counter() - started
            assert not report.failed, report.failed[:3]
            rate = report.chunks_written / seconds
            key = f"server_batch_{batch}_in_flight_{level}"
            runs[f"{key}_chunks_per_s"] = round(rate, 1)
            runs[f"{key}_vs_in_process"] = round(rate / in_process_rate, 3)
            raw = runs[f"raw_server_batch_{batch}_texts_per_s"]
            runs[f"{key}_vs_raw_server"] = round(rate / float(raw), 3)  # type: ignore[arg-type]
            service.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BEIR SciFact folder")
    parser.add_argument("--limit", type=int, default=None, help="only the first N documents")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--server", action="store_true", help="also ingest through a llama.cpp embedding server"
    )
    parser.add_argument("--in-flight", default="1,2,4", help="requests in flight to try")
    parser.add_argument(
        "--batch-sizes", default="32", help="embedding_batch_size values to try (texts/request)"
    )
    # llama.cpp's threads spin at a barrier: more threads than the cores left free stall it badly.
    parser.add_argument("--server-threads", type=int, default=1, help="llama.cpp threads")
    args = parser.parse_args()

    from llm_engineering.logs import setup_logging

    setup_logging("WARNING")
    from llm_engineering.config import load_settings
    from llm_engineering.index_store.service import IndexService

    work = Path(tempfile.mkdtemp(prefix="llm-eng-bench-"))
    try:
        folder = work / "scifact"
        files = write_corpus(args.data / "corpus.jsonl", folder, args.limit)
        settings = load_settings(data_dir=work / "data", config_file=None)
        service = IndexService(settings)
        embedder = service.embedder()  # loading the model is not ingestion
        service.parsers().start(service.parse_config())
        embedder.embed_documents(["warm up the model"] * 8)

        started = time.perf_counter()
        report = service.ingest([folder])
        pipeline_s = time.perf_counter() - started
        chunks = report.chunks_written
        assert report.added == files and not report.failed, report

        texts = chunk_texts(service, folder)
        assert len(texts) == chunks
        from sentence_transformers import SentenceTransformer

        from llm_engineering.packaged import resolve_embedding_model

        # the raw baseline: sentence-transformers itself, same texts, same process
        plain = SentenceTransformer(resolve_embedding_model(settings.embedding_model), device="cpu")
        plain.encode(["warm up the model"] * 8)
        started = time.perf_counter()
        plain.encode(texts, batch_size=32)
        raw_s = time.perf_counter() - started
        started = time.perf_counter()
        embedder.embed_documents(texts)  # the model alone, as the pipeline runs it
        model_s = time.perf_counter() - started

        started = time.perf_counter()
        again = service.ingest([folder])
        reindex_s = time.perf_counter() - started
        assert again.unchanged == files and again.chunks_embedded == 0

        queries = [json.loads(line)["text"] for line in (args.data / "queries.jsonl").open()][
            : args.queries
        ]
        for query in queries[:5]:
            service.search(query, top_k=5)
        in_process = []
        for query in queries:
            started = time.perf_counter()
            service.search(query, top_k=5)
            in_process.append((time.perf_counter() - started) * 1000)
        service.close()
        del service
        over_stdio = anyio.run(stdio_latencies, settings.data_dir, queries)

        pipeline_rate, raw_rate = chunks / pipeline_s, chunks / raw_s
        results = {
            "files": files,
            "chunks": chunks,
            "pipeline_s": round(pipeline_s, 2),
            "pipeline_chunks_per_s": round(pipeline_rate, 1),
            "encode_s": round(raw_s, 2),
            "encode_chunks_per_s": round(raw_rate, 1),
            "pipeline_vs_encode": round(pipeline_rate / raw_rate, 3),
            "embedder_runtime": embedder.runtime,
            "embedder_chunks_per_s": round(chunks / model_s, 1),
            "embedder_vs_encode": round(raw_s / model_s, 3),
            "reindex_unchanged_s": round(reindex_s, 3),
            "reindex_files_per_s": round(files / reindex_s),
            "search_in_process_p50_ms": round(statistics.median(in_process), 2),
            "search_in_process_p95_ms": round(percentile(in_process, 95), 2),
            "search_stdio_p50_ms": round(statistics.median(over_stdio), 2),
            "search_stdio_p95_ms": round(percentile(over_stdio, 95), 2),
        }
        results["stdio_vs_in_process_p50"] = round(
            results["search_stdio_p50_ms"] / results["search_in_process_p50_ms"], 2
        )
        if args.server:
            levels = [int(n) for n in args.in_flight.split(",")]
            batches = [int(n) for n in args.batch_sizes.split(",")]
            results.update(
                server_runs(
                    folder, work, levels, args.server_threads, pipeline_rate, texts, batches
                )
            )
            # In process again after the server runs: the load of a shared machine drifts.
            again_service = IndexService(load_settings(data_dir=work / "again", config_file=None))
            again_service.embedder()
            again_service.parsers().start(again_service.parse_config())
            started = time.perf_counter()
            again_report = again_service.ingest([folder])
            results["pipeline_after_server_chunks_per_s"] = round(
                again_report.chunks_written / (time.perf_counter() - started), 1
            )
            again_service.close()
        print(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
