"""Writing the index while the data folder's disk is full: pause, keep answering, resume.

A write that fails for want of space (SQLite's ``database or disk is full``, Chroma's
compaction error, an ``ENOSPC``) raises :class:`~llm_engineering.errors.DiskFullError`.
:class:`WritePause` then pauses the writing: the vectors are left alone (see
:mod:`.vectors`: a Chroma client that failed that way can freeze the process), the run's
unsettled files stay pending and those it was writing are listed as failed with the reason
(:class:`~.progress.RunProgress`), and searches go on from what is committed. Every later
write first checks whether there is room again (:func:`has_room`, a real write); once there
is, the vectors are opened afresh, what the stopped run left half-written is repaired, and
writing goes on. The server's indexer asks for that itself (:meth:`WritePause.resume`), so
indexing resumes by itself once space is freed.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from llm_engineering.errors import DiskFullError
from llm_engineering.index_store.ingest.published import RunProgress
from llm_engineering.index_store.store.vectors import VectorIndex
from llm_engineering.storage import is_disk_full, no_space_left

__all__ = ["PROBE_BYTES", "WritePause", "has_room"]

log = logging.getLogger(__name__)

PROBE_BYTES = 1 << 20
"""What :func:`has_room` writes: room for a step's rows and vectors, not just a byte."""


def has_room(folder: Path, size: int = PROBE_BYTES) -> bool:
    """Whether ``size`` bytes can be written (and synced) in ``folder`` now: the one test a
    disk's free-space figure cannot stand for (reserved blocks, quotas, a tmpfs)."""
    probe = folder / ".space-probe"
    try:
        with probe.open("wb") as handle:
            handle.write(b"\0" * size)
            handle.flush()
            os.fsync(handle.fileno())
        return True
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        return False
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


class WritePause:
    """Pauses a service's writes when its data folder's disk is full, and resumes them.

    Args:
        data_dir: The data folder (where :func:`has_room` writes).
        vectors: The collection to pause and open afresh.
        run: Where the pause is recorded and published.
        repair: Makes Chroma agree with SQLite again (what the stopped run left half-written).
    """

    def __init__(
        self,
        data_dir: Path,
        vectors: VectorIndex,
        run: RunProgress,
        repair: Callable[[], object],
    ):
        self._data_dir = data_dir
        self._vectors = vectors
        self._run = run
        self._repair = repair

    @property
    def paused(self) -> str | None:
        return self._run.paused

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Run a write: refused at once while there is still no room, paused when it fails
        for want of space (the error goes on to the caller). Call with the write lock held.

        Raises:
            DiskFullError: no space left on the data folder's disk.
        """
        if not self.resume():
            raise no_space_left(self._data_dir)
        try:
            yield
        except DiskFullError as exc:
            self._pause(exc)
            raise

    def resume(self) -> bool:
        """Whether writes may go on: True unless paused and there is still no room. Call with
        the write lock held."""
        if self._run.paused is None:
            return True
        if not has_room(self._data_dir):
            return False
        try:
            self._vectors.resume()
            self._repair()
        except DiskFullError as exc:
            self._pause(exc)
            return False
        log.info("writes succeed again in %s: indexing goes on", self._data_dir)
        self._run.resumed()
        return True

    def _pause(self, error: DiskFullError) -> None:
        if self._run.paused is None:
            log.error("indexing paused: %s", error)
        self._run.pause(error)
        self._vectors.pause(str(error))
