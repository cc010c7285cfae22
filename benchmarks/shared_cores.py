"""Training and searching at once: does each keep its speed when the other runs?

A real job (the worker process ``start_job`` launches, with the settings' thread and
priority rules) trains the packaged 135M model while this process answers searches over
300 SciFact abstracts in a loop, as an agent would while a fine-tune runs. Measured, each
alone and both at once in the same process and data folder:

* training: seconds per optimizer step (median of the steps after the first two);
* searching: ``IndexService.search`` latency p50 (hybrid, top 5, no rerank).

Reported: the ratio shared / alone of each speed (target on 2 cores: each >= 0.4).

Usage: python benchmarks/shared_cores.py [--steps 10] [--data ../shared/data/scifact]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scifact"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingest_search import write_corpus  # noqa: E402  (the same corpus files as that benchmark)


def records(count: int) -> list[dict[str, Any]]:
    from tests.adapters.fictional import fact_records

    return fact_records(count)


def step_seconds(events_file: Path, skip: int = 2) -> list[float]:
    times = [
        json.loads(line)["t"]
        for line in events_file.read_text().splitlines()
        if json.loads(line).get("event") == "step"
    ]
    return [b - a for a, b in zip(times[skip:], times[skip + 1 :], strict=False)]


def train(training: Any, name: str, steps: int, on_running: Any = None) -> list[float]:
    job = training.start_job(name, records=records(16), hyperparameters={"max_steps": steps})
    folder = training.store.folder(job.id)
    ran = False
    while True:
        view = training.view(job.id, tail=0)
        if not ran and view.step >= 2 and on_running is not None:
            on_running()
            ran = True
        if view.job.status not in ("validating", "queued", "running"):
            break
        time.sleep(0.2)
    assert view.job.status == "succeeded", view.job
    return step_seconds(folder.events_file)


def search_loop(index: Any, queries: list[str], stop: threading.Event, out: list[float]) -> None:
    i = 0
    while not stop.is_set():
        started = time.perf_counter()
        index.search(queries[i % len(queries)], top_k=5, mode="hybrid", rerank=False)
        out.append((time.perf_counter() - started) * 1000)
        i += 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--docs", type=int, default=300)
    args = parser.parse_args()

    from llm_engineering.adapters.service import TrainingService
    from llm_engineering.config import load_settings
    from llm_engineering.cpu import cores
    from llm_engineering.index_store.service import IndexService
    from llm_engineering.logs import setup_logging

    setup_logging("WARNING")
    work = Path(tempfile.mkdtemp(prefix="llm-eng-shared-"))
    try:
        folder = work / "docs"
        write_corpus(args.data / "corpus.jsonl", folder, args.docs)
        settings = load_settings(data_dir=work / "data", config_file=None, watch=[folder])
        index = IndexService(settings)
        index.ingest([folder])
        queries = [json.loads(line)["text"] for line in (args.data / "queries.jsonl").open()]
        queries = queries[:100]
        for query in queries[:5]:
            index.search(query, top_k=5, mode="hybrid", rerank=False)

        alone_search: list[float] = []
        stop = threading.Event()
        timer = threading.Timer(20, stop.set)
        timer.start()
        search_loop(index, queries, stop, alone_search)

        training = TrainingService(settings)
        training.start_runner()
        train(training, "warm", 2)  # converts the GGUF base once; not measured
        alone_steps = train(training, "alone", args.steps)

        shared_search: list[float] = []
        stop = threading.Event()
        thread = threading.Thread(target=search_loop, args=(index, queries, stop, shared_search))
        shared_steps = train(training, "shared", args.steps, on_running=thread.start)
        stop.set()
        thread.join()
        training.close()
        index.close()

        figures = {
            "cores": cores(),
            "train_step_s_alone": round(statistics.median(alone_steps), 2),
            "train_step_s_shared": round(statistics.median(shared_steps), 2),
            "search_p50_ms_alone": round(statistics.median(alone_search), 2),
            "search_p50_ms_shared": round(statistics.median(shared_search), 2),
            "searches_alone": len(alone_search),
            "searches_shared": len(shared_search),
        }
        figures["train_speed_kept"] = round(
            figures["train_step_s_alone"] / figures["train_step_s_shared"], 2
        )
        figures["search_speed_kept"] = round(
            figures["search_p50_ms_alone"] / figures["search_p50_ms_shared"], 2
        )
        print(json.dumps(figures, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
