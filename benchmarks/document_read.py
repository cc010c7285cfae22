"""How fast ``get_document`` reads a slice, over stdio and in-process.

A 5,000-line Markdown file and a 100-page PDF are indexed by a real ``llm-eng serve``
over stdio. Then, many times each: a 200-line slice of the Markdown file and one page of
the PDF through ``get_document`` (the SDK client over stdio), against the same slices
read in this process from the same data folder (``IndexService.get_document``, a reader
of the server's index). Targets: stdio p50 <= 2x in-process and <= 30 ms.

Usage: python benchmarks/document_read.py [--reads 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

LLM_ENG = str(Path(sys.executable).parent / "llm-eng")


def make_folder(folder: Path) -> None:
    from fpdf import FPDF

    folder.mkdir(parents=True)
    lines = [f"Line {i}: the {i % 97}th note on bird {i % 31} and its habits." for i in range(5000)]
    (folder / "long.md").write_text("# Long\n\n" + "\n".join(lines) + "\n")
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for page in range(1, 101):
        pdf.add_page()
        pdf.multi_cell(0, 6, f"Page {page}. " + " ".join(f"word{page}x{i}" for i in range(300)))
    pdf.output(str(folder / "book.pdf"))


def requests(count: int) -> list[dict[str, object]]:
    rng = random.Random(7)
    asks: list[dict[str, object]] = []
    for i in range(count):
        if i % 2:
            start = rng.randint(1, 4800)
            asks.append({"path": "long.md", "start_line": start, "end_line": start + 199})
        else:
            asks.append({"path": "book.pdf", "page": rng.randint(1, 100)})
    return asks


async def over_stdio(
    folder: Path, data_dir: Path, asks: list[dict[str, object]]
) -> dict[str, list[float]]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=LLM_ENG,
        args=["serve", "--watch", str(folder), "--data-dir", str(data_dir)],
        env={**os.environ, "LLM_ENG_CONFIG": "", "LLM_ENG_LOG_LEVEL": "WARNING"},
    )
    times: dict[str, list[float]] = {"md": [], "pdf": []}
    async with Client(params, read_timeout_seconds=300) as client:
        with anyio.fail_after(600):
            while True:
                status = (await client.call_tool("index_status", {})).structured_content
                if status["documents"] == 2 and status["pending"] == 0:
                    break
                await anyio.sleep(0.2)
        for ask in asks[:10]:  # warm up
            await client.call_tool("get_document", ask)
        for ask in asks:
            started = time.perf_counter()
            result = await client.call_tool("get_document", ask)
            times["pdf" if "page" in ask else "md"].append(time.perf_counter() - started)
            assert not result.is_error, result.content
    return times


def in_process(
    folder: Path, data_dir: Path, asks: list[dict[str, object]]
) -> dict[str, list[float]]:
    from llm_engineering.config import load_settings
    from llm_engineering.index_store.service import IndexService

    service = IndexService(load_settings(data_dir=data_dir, watch=[folder]))
    times: dict[str, list[float]] = {"md": [], "pdf": []}
    for ask in asks:
        started = time.perf_counter()
        service.get_document(**ask)
        times["pdf" if "page" in ask else "md"].append(time.perf_counter() - started)
    service.close()
    return times


def raw_reads(folder: Path, asks: list[dict[str, object]]) -> dict[str, list[float]]:
    """Baseline: the slice read straight from the file, as a tool without an index would."""
    import io

    from pypdf import PdfReader

    times: dict[str, list[float]] = {"md": [], "pdf": []}
    for ask in asks:
        started = time.perf_counter()
        if "page" in ask:
            reader = PdfReader(io.BytesIO((folder / "book.pdf").read_bytes()))
            reader.pages[int(ask["page"]) - 1].extract_text()  # type: ignore[call-overload]
            times["pdf"].append(time.perf_counter() - started)
        else:
            lines = (folder / "long.md").read_text().split("\n")
            lines[int(ask["start_line"]) - 1 : int(ask["end_line"])]  # type: ignore[call-overload]
            times["md"].append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reads", type=int, default=200)
    args = parser.parse_args()
    from llm_engineering.logs import setup_logging

    setup_logging("WARNING")
    work = Path(tempfile.mkdtemp(prefix="llm-eng-docs-"))
    try:
        folder = work / "docs"
        make_folder(folder)
        asks = requests(args.reads)
        stdio = anyio.run(over_stdio, folder, work / "data", asks)
        local = in_process(folder, work / "data", asks)
        raw = raw_reads(folder, asks)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results: dict[str, float] = {}
    for kind, label in (("md", "200_lines_of_5000"), ("pdf", "1_page_of_100")):
        s, p = statistics.median(stdio[kind]) * 1000, statistics.median(local[kind]) * 1000
        results[f"{label}_stdio_p50_ms"] = round(s, 2)
        results[f"{label}_in_process_p50_ms"] = round(p, 2)
        results[f"{label}_stdio_vs_in_process"] = round(s / p, 2)
        r = statistics.median(raw[kind]) * 1000
        results[f"{label}_raw_file_read_p50_ms"] = round(r, 2)
        results[f"{label}_stdio_vs_raw_file_read"] = round(s / r, 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
