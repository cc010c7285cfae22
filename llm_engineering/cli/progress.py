"""What the commands show while they work, on stderr: the ingest's bar (piped: a line every
few seconds), a spinner while a model loads, the reply as the model writes it."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["FileProgress", "file_progress", "status_note", "streamed_reply"]


@contextmanager
def streamed_reply() -> Iterator[Callable[[str], None] | None]:
    """On a terminal, the reply as the model writes it, on stderr, erased when it ends (the
    final answer is printed once, after it); elsewhere nothing (None)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    text = Text(style="dim")
    with Live(text, console=Console(stderr=True), transient=True, refresh_per_second=12):

        def show(piece: str) -> None:
            text.append(piece)

        yield show


class FileProgress:
    """The ingest progress callback (``done, total, path``), and :meth:`note` for a pause.

    On a terminal it feeds the bar; piped, :meth:`report` writes a line to stderr (files
    done, chunks, rate, the file last done) every few seconds, so a log or a CI job shows
    that a long ingest is alive."""

    def __init__(self, bar: Progress, task: TaskID, chunks: Callable[[], int] | None = None):
        self._bar, self._task, self._chunks = bar, task, chunks
        self._started = time.monotonic()
        self.done = self.total = 0
        self.last = ""

    def __call__(self, done: int, total: int, message: str) -> None:
        self.done, self.total = done, total
        self.last = message or self.last
        self._bar.update(
            self._task, completed=done, total=total, description=Path(message).name[-60:]
        )

    def note(self, text: str) -> None:
        """Say what the pause is about (loading a model) until the next file is done."""
        self.last = text
        self._bar.update(self._task, description=text, refresh=True)

    def report(self) -> None:
        """One line on stderr: how far the ingest is."""
        rate = self.done / max(time.monotonic() - self._started, 1e-9)
        try:
            chunks = f", {self._chunks():,} chunks" if self._chunks is not None else ""
        except Exception:
            chunks = ""
        total = f" of {self.total:,}" if self.total else ""
        now = f", last {self.last}" if self.last else ""
        sys.stderr.write(f"indexing: {self.done:,}{total} files{chunks}, {rate:.1f} files/s{now}\n")
        sys.stderr.flush()


@contextmanager
def file_progress(
    chunks: Callable[[], int] | None = None, every_s: float = 5.0
) -> Iterator[FileProgress]:
    """A transient ``indexing [bar] done/total elapsed eta`` line on stderr, fed by a progress
    callback; piped, a line every ``every_s`` seconds instead (``chunks`` counts what is
    indexed)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.description}", style="dim"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        progress = FileProgress(bar, bar.add_task("", total=None), chunks)
        if bar.console.is_terminal:
            yield progress
            return
        stop = threading.Event()

        def report() -> None:
            while not stop.wait(every_s):
                progress.report()

        reporter = threading.Thread(target=report, name="ingest-progress", daemon=True)
        reporter.start()
        try:
            yield progress
        finally:
            stop.set()
            reporter.join()


@contextmanager
def status_note(text: str) -> Iterator[None]:
    """A transient spinner with ``text`` on stderr while the block runs (nothing when piped)."""
    from rich.console import Console

    with Console(stderr=True).status(text):
        yield
