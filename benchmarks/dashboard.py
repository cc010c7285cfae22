"""The dashboard: time to render the overview over 10,000 indexed files, and how long an
event written to a job's events.jsonl takes to reach the loss chart in a real browser.

    .venv/bin/python benchmarks/dashboard.py              # about 8 minutes on 2 cores
    .venv/bin/python benchmarks/dashboard.py --data /tmp/dash-bench   # keep the index for reruns

1. 10,000 tiny Markdown files (and 20 corrupt PDFs) are indexed once through the normal
   ingestion path into a data folder in a temp dir. The dashboard is built over the same
   services ``llm-eng serve --http`` opens (the index and its background runner, watching),
   and ``GET /`` is timed in process through the ASGI app (server time: routing, the guard,
   the status queries in a worker thread, the template). The raw baseline is the status
   call alone (``AppContext.status()``), in the same process.
2. The dashboard is served by uvicorn on a loopback port; headless chromium (Debian's, via
   Selenium) opens a running job's page; step events are appended to its events.jsonl one
   at a time, each stamped with the time it was written, and the page records when each
   reached the chart (after ``uPlot.setData``). Skipped without chromium and selenium.

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from llm_engineering.adapters.service import TrainingService
from llm_engineering.config import load_settings
from llm_engineering.context import AppContext
from llm_engineering.dashboard import Dashboard, create_dashboard
from llm_engineering.index_store.background import IndexRunner
from llm_engineering.index_store.service import IndexService

FILES = 10_000
RENDERS = 100
EVENTS = 40


def write_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(FILES):
        sub = folder / f"part-{n // 500:02d}"
        sub.mkdir(exist_ok=True)
        (sub / f"note-{n:05d}.md").write_text(
            f"# Note {n}\n\nItem {n} of the inventory: shelf {n % 97}, bin {n % 13}.\n"
        )
    for n in range(20):
        (folder / f"broken-{n:02d}.pdf").write_bytes(b"%PDF-1.4\nnot a pdf")


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "max": round(ordered[-1], 2),
    }


def overview_render(data: Path) -> tuple[dict[str, Any], Dashboard, AppContext]:
    folder = data / "docs"
    settings = load_settings(data_dir=data / "data", watch=[folder])
    fresh = not folder.is_dir()
    if fresh:
        write_folder(folder)
    index = IndexService(settings)
    started = time.perf_counter()
    runner = IndexRunner(index, [folder])
    runner.start()
    while not runner.reconciled.wait(1.0):
        print(f"indexing: {index.status().documents} documents", flush=True)
    index_s = time.perf_counter() - started
    while not index.embedder_loaded:  # the runner loads it next; not the dashboard's time
        time.sleep(0.2)
    app = AppContext(settings=settings, read_only=False, index=index, runner=runner)
    app.training = TrainingService(settings)
    dashboard = create_dashboard(settings)
    dashboard.attach(app)

    async def measure() -> tuple[float, list[float], list[float]]:
        transport = httpx.ASGITransport(app=dashboard.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as c:
            begun = time.perf_counter()
            first = await c.get("/")
            first_ms = (time.perf_counter() - begun) * 1000
            assert first.status_code == 200 and f">{FILES:,}<" in first.text, first.text[:500]
            renders = []
            for _ in range(RENDERS):
                begun = time.perf_counter()
                response = await c.get("/")
                renders.append((time.perf_counter() - begun) * 1000)
                assert response.status_code == 200
        raw = []
        for _ in range(RENDERS):
            begun = time.perf_counter()
            app.status()
            raw.append((time.perf_counter() - begun) * 1000)
        return first_ms, renders, raw

    first_ms, renders, raw = anyio.run(measure)
    result = {
        "files": FILES,
        "documents": index.status().documents,
        "failed": len(index.status().failed),
        "indexed_now": fresh,
        "index_or_reconcile_s": round(index_s, 1),
        "first_render_ms": round(first_ms, 2),
        "render_ms": percentiles(renders),
        "raw_status_ms": percentiles(raw),
        "render_over_raw_p50": round(statistics.median(renders) / statistics.median(raw), 2),
    }
    return result, dashboard, app


def chart_latency(dashboard: Dashboard, app: AppContext) -> dict[str, Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        return {"skipped": "selenium is not installed"}
    if not Path("/usr/bin/chromium").is_file():
        return {"skipped": "/usr/bin/chromium is not installed"}
    import socket

    import uvicorn

    training = app.require_training()
    job, folder = training.store.create("bench", "none", {"max_steps": 1000})
    training.store.update(job.id, status="running", started=time.time())
    events = folder.events_file
    with events.open("a") as handle:
        handle.write(json.dumps({"t": time.time(), "event": "started", "step": 0}) + "\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(dashboard.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(
        service=webdriver.ChromeService("/usr/bin/chromedriver"), options=options
    )
    try:
        driver.get(f"http://127.0.0.1:{port}/jobs/{job.id}")
        WebDriverWait(driver, 60).until(
            lambda d: d.execute_script("return !!(window.llmEng && window.llmEng.chartUpdates)")
        )
        time.sleep(1.0)  # the EventSource connects
        with events.open("a") as handle:
            for step in range(1, EVENTS + 1):
                line = {"t": round(time.time(), 3), "event": "step", "step": step,
                        "total": 1000, "loss": 3.0 - step / 100, "learning_rate": 1e-3,
                        "tokens": 100, "tokens_per_s": 50.0, "elapsed_s": step,
                        "eta_s": 1000 - step}  # fmt: skip
                handle.write(json.dumps(line) + "\n")
                handle.flush()
                WebDriverWait(driver, 30, poll_frequency=0.02).until(
                    lambda d, step=step: (
                        d.execute_script(
                            "const u = window.llmEng.chartUpdates;"
                            "return u.length && u[u.length - 1].step;"
                        )
                        == step
                    )
                )
                time.sleep(0.3)  # lands at a random point of the stream's tick
        updates = driver.execute_script("return window.llmEng.chartUpdates")
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=30)
    latencies = [u["shown"] - u["t"] * 1000 for u in updates]
    return {
        "events": len(latencies),
        "write_to_chart_ms": percentiles(latencies),
        "stream_tick_ms": 250,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="keep the index here (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dash-bench-") as temp:
        data = args.data or Path(temp)
        overview, dashboard, app = overview_render(data)
        print(json.dumps({"overview": overview}), flush=True)
        chart = chart_latency(dashboard, app)
        print(json.dumps({"overview": overview, "chart": chart}, indent=2))
        assert app.runner is not None and app.training is not None and app.index is not None
        app.runner.stop()
        app.training.close()
        app.index.close()


if __name__ == "__main__":
    main()
