"""``ParsePool``: files are read, parsed and chunked in worker processes that can be stopped.

A parser can run away on a hostile file (a page nested 100,000 levels deep took 8
minutes in BeautifulSoup) and no thread can be stopped from outside, so every file goes
to one of a few persistent worker processes (:mod:`.parse_worker`). Each worker is
served by a thread of this process that sends it one file at a time and waits at most
the request's ``timeout_s`` for the answer: past it, the worker is killed and the file
reported as failed, naming ``parse_timeout_s``; a new worker starts for the next file.
A worker's address space is capped (``parse_memory_mb``), so no file can make parsing
hold more memory than that. The other workers go on meanwhile, so one slow file holds
one worker, never the folder. The first worker starts with the first file and another
each time files have waited a second for the busy ones, so a handful of files costs one
worker's start (two seconds of imports), and a big folder or a slow file soon has them all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from llm_engineering.errors import ParserStartError
from llm_engineering.index_store.read.chunking import Chunk
from llm_engineering.index_store.read.parse_process import STARTUP_S, WorkerDied, WorkerProcess
from llm_engineering.index_store.read.readers import ReadLimits

__all__ = ["ParseConfig", "ParsePool", "ParseRequest", "ParseResult"]

log = logging.getLogger(__name__)

_SPARE_AFTER_S = 1.0
"""Files that waited this long for the busy workers start one more (up to ``workers``)."""


@dataclass(frozen=True)
class ParseConfig:
    """How a worker splits files: chunk sizes, the tokenizer's spec (None: words), the limits."""

    chunk_size: int
    chunk_overlap: int
    tokenizer: str | None
    limits: ReadLimits = field(default_factory=ReadLimits)

    def message(self) -> dict[str, Any]:
        return {
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "tokenizer": self.tokenizer,
            "limits": asdict(self.limits),
        }

    @cached_property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.message(), sort_keys=True).encode()).hexdigest()


@dataclass
class ParseRequest:
    path: Path
    config: ParseConfig
    timeout_s: float
    max_bytes: int
    old_sha256: str | None = None
    """When the file's sha256 is this, it is not parsed (``unchanged``)."""


@dataclass
class ParseResult:
    status: Literal["parsed", "unchanged", "missing", "failed"]
    sha256: str | None = None
    size: int | None = None
    error: str | None = None
    title: str = ""
    chunks: list[Chunk] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    pages: list[int] | None = None


class ParsePool:
    """Persistent parse worker processes, each served by a thread: the first starts with the
    first file, the others when files wait for it (``_SPARE_AFTER_S``).

    Args:
        workers: How many files may be parsed at once.
        memory_bytes: Address space each worker may use (``parse_memory_mb``).
    """

    def __init__(self, workers: int, memory_bytes: int):
        self.workers = workers
        self.memory_bytes = memory_bytes
        self._jobs: queue.SimpleQueue[tuple[ParseRequest, Future[ParseResult]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._live: set[WorkerProcess] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._one_ready = threading.Event()
        self._submitted = threading.Event()

    def submit(self, request: ParseRequest) -> Future[ParseResult]:
        """Queue a file; the future's result says what became of it (it never raises for the
        file's sake: a timeout, a crash or a limit is a ``failed`` result naming why)."""
        future: Future[ParseResult] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the parse pool is closed")
            if not self._threads:
                self._add_thread()
                if self.workers > 1:
                    threading.Thread(
                        target=self._grow, name="llm-eng-parse-grow", daemon=True
                    ).start()
        self._jobs.put((request, future))
        self._submitted.set()
        return future

    def start(self, config: ParseConfig | None = None) -> None:
        """Start every worker now, configured for ``config``, so that no file that follows
        waits for a worker's start (what a benchmark that times the parsing wants)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the parse pool is closed")
            while len(self._threads) < self.workers:
                self._add_thread()
        idle = ParseRequest(Path(os.devnull), config or ParseConfig(32, 0, None), 120, 0)
        for future in [self.submit(idle) for _ in range(self.workers)]:
            future.result()

    @property
    def running(self) -> int:
        """Worker processes started and not stopped."""
        with self._lock:
            return len(self._live)

    def close(self) -> None:
        """Stop the workers (a file being parsed is abandoned) and their threads."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
            live = list(self._live)
        self._submitted.set()
        for _ in threads:
            self._jobs.put(None)
        for worker in live:
            worker.stop()
        for thread in threads:
            thread.join(timeout=30)

    def _add_thread(self) -> None:
        """A serving thread (its worker starts with its first file); under ``_lock``."""
        thread = threading.Thread(
            target=self._serve, name=f"llm-eng-parse-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _grow(self) -> None:
        """Start the other workers one at a time, each when files have waited
        ``_SPARE_AFTER_S`` for the busy ones: a handful of files never pays a second worker's
        start (two seconds of imports), a folder of them, or a slow file, soon does."""
        waiting_since: float | None = None
        while True:
            with self._lock:
                if self._closed or len(self._threads) >= self.workers:
                    return
            if self._jobs.empty():
                waiting_since = None
                self._submitted.clear()
                if self._jobs.empty():  # a file submitted since the check set it again
                    self._submitted.wait()
                continue
            now = time.monotonic()
            if not self._one_ready.is_set() or waiting_since is None:
                waiting_since = now  # a worker's own start is not waiting for busy workers
            elif now - waiting_since >= _SPARE_AFTER_S:
                with self._lock:
                    if not self._closed:
                        self._add_thread()
                waiting_since = None
            time.sleep(0.1)

    def _serve(self) -> None:
        worker: WorkerProcess | None = None
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                request, future = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    result, worker = self._run(request, worker)
                except Exception as exc:  # e.g. no worker could start: the caller says so
                    future.set_exception(exc)
                else:
                    future.set_result(result)
        finally:
            if worker is not None:
                self._retire(worker)

    def _run(
        self, request: ParseRequest, worker: WorkerProcess | None
    ) -> tuple[ParseResult, WorkerProcess | None]:
        """Parse one file; returns its result and the worker to keep (None: it was stopped)."""
        for attempt in range(2):
            if worker is None or not worker.alive():
                if worker is not None:
                    self._retire(worker)
                worker = self._spawn()
            key = request.config.key
            fresh = not worker.known
            message: dict[str, Any] = {
                "path": str(request.path),
                "old_sha256": request.old_sha256,
                "max_bytes": request.max_bytes,
                "config_id": key,
            }
            try:
                if key not in worker.known:
                    configure = {"configure": key, "config": request.config.message()}
                    if worker.ask(configure, time.monotonic() + STARTUP_S) is None:
                        raise WorkerDied("it did not take its configuration")
                answer = worker.ask(message, time.monotonic() + request.timeout_s)
            except WorkerDied:
                status = self._retire(worker)
                worker = None
                if attempt == 0 and not fresh and not self._closed:
                    continue  # it died between two files: once more, with a new one
                return ParseResult("failed", error=self._death(status)), None
            if answer is None:
                self._retire(worker)
                return ParseResult(
                    "failed",
                    error=f"took longer than {request.timeout_s:g} s to read and split "
                    "(parse_timeout_s); its parser process was stopped",
                ), None
            worker.known.add(key)
            result = self._result(answer, request.max_bytes)
            if answer["status"] == "out_of_memory":
                self._retire(worker)
                worker = None
            return result, worker
        raise AssertionError("unreachable")

    def _result(self, answer: dict[str, Any], max_bytes: int) -> ParseResult:
        status = answer["status"]
        sha, size = answer.get("sha256"), answer.get("size")
        if status == "parsed":
            chunks = [
                Chunk(text, ordinal, heading, page, start, end)
                for ordinal, (text, heading, page, start, end) in enumerate(answer["chunks"])
            ]
            return ParseResult(
                "parsed", sha, size, None, answer["title"], chunks, answer["units"], answer["pages"]
            )
        if status == "too_large":
            grown = f"{int(size) / 1048576:.1f} MiB" if size is not None else "larger"
            return ParseResult(
                "failed",
                sha,
                size,
                f"file is {grown}, over the {max_bytes / 1048576:g} MiB limit (max_file_size_mb)",
            )
        if status == "out_of_memory":
            return ParseResult("failed", sha, size, self._memory_note())
        return ParseResult(status, sha, size, answer.get("error"))

    def _memory_note(self) -> str:
        return (
            f"parsing it needed more than the {self.memory_bytes / 1048576:g} MiB a parser "
            "may use (parse_memory_mb)"
        )

    def _death(self, status: int | None) -> str:
        if status is not None and status < 0:
            try:
                how = f"was killed by {signal.Signals(-status).name}"
            except ValueError:
                how = f"was killed by signal {-status}"
        else:
            how = f"exited with status {status}"
        return (
            f"its parser process {how} while reading it (a crash in the parser, or past the "
            f"{self.memory_bytes / 1048576:g} MiB a parser may use: parse_memory_mb)"
        )

    def _spawn(self) -> WorkerProcess:
        worker = WorkerProcess(self.memory_bytes)
        with self._lock:
            self._live.add(worker)
        try:
            worker.wait_ready()
        except ParserStartError:
            with self._lock:
                self._live.discard(worker)
            raise
        self._one_ready.set()
        return worker

    def _retire(self, worker: WorkerProcess) -> int | None:
        with self._lock:
            self._live.discard(worker)
        return worker.stop()
