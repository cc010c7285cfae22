"""One writer per data folder, across processes.

Claude Desktop happily starts two copies of a server. Both may search, but only the
holder of ``data_dir/writer.lock`` (an ``flock``) writes; the kernel releases the lock
when the holder exits, even on ``kill -9``, so another process can take over.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

__all__ = ["WriterLock"]


class WriterLock:
    def __init__(self, data_dir: Path, name: str = "writer.lock"):
        self.path = data_dir / name
        self._fd: int | None = None
        self._mutex = threading.Lock()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it. Never blocks."""
        with self._mutex:
            if self._fd is not None:
                return True
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            return True

    def holder(self) -> int | None:
        """The pid written by the current holder (this process when it holds the lock)."""
        if self._fd is not None:
            return os.getpid()
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def taken(self) -> bool:
        """Whether some process holds the lock (this one included), without taking it.

        The probe holds a shared lock for an instant: a holder-to-be that tries just then
        fails that once, as if the lock were held, and tries again.
        """
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # which drops the shared lock
        return False

    def release(self) -> None:
        with self._mutex:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None
