"""A real full disk for the tests: a small tmpfs mounted for the data folder, filled to the
last byte by a ballast file, freed again by deleting it. Writes there fail with ENOSPC,
SQLite's SQLITE_FULL and Chroma's own errors, as on a full laptop disk.

Mounting needs root on Linux (as the tests and CI run); elsewhere the tests that need it are
skipped, saying why.
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PHRASE = "no space left on the data folder's disk"
"""What every surface says while the data folder's disk is full."""


@contextmanager
def small_disk(folder: Path, megabytes: int = 16) -> Iterator[Path]:
    """``folder`` as the mount point of a ``megabytes`` MB tmpfs (skips the test if it cannot
    be mounted here)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a {megabytes} MB tmpfs to fill (root on Linux needed): "
            f"{mounted.stderr.strip()}"
        )
    try:
        yield folder
    finally:
        # Lazily: a Chroma client of the test process may keep files there open.
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a ballast file in ``folder`` until its disk is full; delete it to free the space."""
    ballast = folder / "ballast"
    with ballast.open("ab", buffering=0) as handle:
        block = b"\0" * 65536
        try:
            while True:
                handle.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        try:  # the last blocks, smaller than one write
            while True:
                handle.write(b"\0" * 512)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return ballast
