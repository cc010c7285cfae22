"""The command line with and without a running server, on a 1,000-file index.

1,000 SciFact abstracts are written as text files and indexed (``llm-eng ingest``). Then,
each launch timed from ``exec`` to exit:

* ``llm-eng search QUERY`` with no server running (cold: Python starts, the index opens,
  the embedding model loads), ``--runs`` times;
* the same with ``llm-eng serve`` running on the data folder (the command asks the server
  over its socket), ``--runs`` times, after one warm-up that loads the server's model;
* ``llm-eng ask QUESTION`` (retrieval, 128 tokens at most) through the running server
  against the same call
  made by an MCP client (``answer_with_context`` over stdio) to that same server,
  alternating which goes first; both decode greedily, so they write the same tokens.

Usage: python benchmarks/cli_latency.py [--files 1000] [--runs 20] [--asks 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
LLM_ENG = str(Path(sys.executable).with_name("llm-eng"))
QUERIES = [
    "vitamin D deficiency and bone fractures",
    "gene expression in tumour cells",
    "antibiotic resistance in bacteria",
    "blood pressure and cardiovascular risk",
    "stem cell differentiation",
]
QUESTION = "What does vitamin D deficiency do to bones?"


def timed(*args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([LLM_ENG, *args], capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"llm-eng {' '.join(args)} failed: {done.stderr[-2000:]}")
    return seconds


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_s": round(statistics.median(ordered), 3),
        "p90_s": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
        "min_s": round(ordered[0], 3),
        "runs": len(ordered),
    }


async def ask_both(data: Path, asks: int) -> dict[str, object]:
    """``llm-eng ask`` and an MCP client's answer_with_context against one server."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=LLM_ENG, args=["serve", "--data-dir", str(data)], env=dict(os.environ)
    )
    arguments = {"question": QUESTION, "max_tokens": 128}
    cli = ["ask", QUESTION, "--max-tokens", "128", "--data-dir", str(data)]
    mcp_s: list[float] = []
    cli_s: list[float] = []
    quiet = open(os.devnull, "w")  # noqa: SIM115 - the server's log, for as long as it runs
    async with (
        stdio_client(params, errlog=quiet) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        sock = data / "cli.sock"
        while not sock.exists():
            await asyncio.sleep(0.2)
        await session.call_tool("answer_with_context", arguments)  # loads the model
        for i in range(asks):
            for which in ("mcp", "cli") if i % 2 == 0 else ("cli", "mcp"):
                started = time.perf_counter()
                if which == "mcp":
                    result = await session.call_tool("answer_with_context", arguments)
                    assert not result.is_error, result.content
                    mcp_s.append(time.perf_counter() - started)
                else:
                    cli_s.append(await asyncio.to_thread(timed, *cli))
    return {
        "mcp_answer_with_context": summary(mcp_s),
        "llm_eng_ask_via_server": summary(cli_s),
        "ratio_cli_to_mcp_p50": round(statistics.median(cli_s) / statistics.median(mcp_s), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--asks", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="llm-eng-cli-"))
    try:
        docs, data = work / "docs", work / "data"
        docs.mkdir()
        with CORPUS.open() as corpus:
            for i, line in zip(range(args.files), corpus, strict=False):
                doc = json.loads(line)
                (docs / f"{i:04}.txt").write_text(f"{doc['title']}\n\n{doc['text']}\n")
        started = time.perf_counter()
        timed("ingest", str(docs), "--data-dir", str(data))
        ingest_s = time.perf_counter() - started
        search = ["search", "--data-dir", str(data)]
        cold = [timed(*search, QUERIES[i % len(QUERIES)]) for i in range(args.cold_runs)]

        server = subprocess.Popen(
            [LLM_ENG, "serve", "--data-dir", str(data)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            while not (data / "cli.sock").exists():
                time.sleep(0.2)
            timed(*search, "warm up")  # the server's first search loads its model
            warm = [timed(*search, QUERIES[i % len(QUERIES)]) for i in range(args.runs)]
        finally:
            server.terminate()
            server.wait(timeout=60)
        asked = asyncio.run(ask_both(data, args.asks))
        report = {
            "files": args.files,
            "ingest_s": round(ingest_s, 1),
            "search_no_server": summary(cold),
            "search_via_server": summary(warm),
            "search_speedup_p50": round(statistics.median(cold) / statistics.median(warm), 1),
            "ask": asked,
        }
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
