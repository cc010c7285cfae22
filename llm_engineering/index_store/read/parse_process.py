"""One parse worker process (:mod:`.parse_worker`) as :class:`~.parse_pool.ParsePool` drives it:
started with a capped address space, asked one frame at a time with a deadline, killed."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from typing import Any

from llm_engineering.errors import ParserStartError
from llm_engineering.index_store.read.parse_worker import write_frame

__all__ = ["STARTUP_S", "WorkerDied", "WorkerProcess"]

_HEADER_SIZE = 8
STARTUP_S = 300.0
"""How long a worker may take to start (imports) or to take a config (a tokenizer): never
counted against a file, and only a broken installation comes near it."""


class WorkerDied(Exception):
    """The worker process ended, or broke the protocol."""


class WorkerProcess:
    """One worker process and the config ids it knows."""

    def __init__(self, memory_bytes: int):
        env = dict(os.environ)
        # One thread and one malloc arena: nothing else claims the capped address space.
        env.update({"TOKENIZERS_PARALLELISM": "false", "MALLOC_ARENA_MAX": "1"})
        env.setdefault("OMP_NUM_THREADS", "1")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llm_engineering.index_store.read.parse_worker",
                str(memory_bytes),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._in = self.process.stdin
        self._out = self.process.stdout.fileno()
        self.known: set[str] = set()

    def wait_ready(self) -> None:
        """Wait for the worker's imports to finish.

        Raises:
            ParserStartError: it exited or did not say ready within the start-up bound.
        """
        try:
            header = self._read(_HEADER_SIZE, time.monotonic() + STARTUP_S)
            body = (
                self._read(int.from_bytes(header, "big"), time.monotonic() + STARTUP_S)
                if header
                else None
            )
        except WorkerDied:
            body = None
        if body is None or json.loads(body).get("status") != "ready":
            self.stop()
            raise ParserStartError(
                f"a parse worker process did not start ({sys.executable} -m "
                "llm_engineering.index_store.read.parse_worker; see its errors above)"
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def ask(self, message: dict[str, Any], deadline: float) -> dict[str, Any] | None:
        """The answer, or None once ``deadline`` (monotonic) passes first.

        Raises:
            WorkerDied: the process ended (or closed its pipe) before answering.
        """
        try:
            write_frame(self._in, message)
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(str(exc)) from exc
        header = self._read(_HEADER_SIZE, deadline)
        if header is None:
            return None
        body = self._read(int.from_bytes(header, "big"), deadline)
        if body is None:
            return None
        answer: dict[str, Any] = json.loads(body)
        return answer

    def _read(self, length: int, deadline: float) -> bytes | None:
        buffer = bytearray(length)
        view = memoryview(buffer)
        done = 0
        while done < length:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._out], [], [], left)
            if not ready:
                continue
            got = os.readv(self._out, [view[done : done + (1 << 22)]])
            if got == 0:
                raise WorkerDied("the worker closed its output")
            done += got
        return bytes(buffer)

    def stop(self) -> int | None:
        """Kill the process (if it still runs) and reap it; its exit status."""
        if self.process.poll() is None:
            self.process.kill()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # unkillable (D state): leave it to the OS
            return None
        finally:
            self._in.close()
            if self.process.stdout is not None:
                self.process.stdout.close()
