"""Which files in a folder are documents to index, and which are noise to skip."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llm_engineering.index_store.readers import SUPPORTED_EXTENSIONS, file_type_of

__all__ = ["ScannedFile", "is_ignored_name", "is_supported", "scan_folder"]

_IGNORED_DIRS = frozenset({"node_modules", "__pycache__", "venv", "site-packages", "dist-packages"})


def is_ignored_name(name: str) -> bool:
    """Hidden files, editor swap/backup/lock files, and Office lock files."""
    return (
        name.startswith((".", "~$", "#"))
        or name.endswith(("~", ".swp", ".swx", ".swo", ".tmp", ".part", ".crdownload"))
        or name in _IGNORED_DIRS
    )


def is_supported(path: Path) -> bool:
    return file_type_of(path) in SUPPORTED_EXTENSIONS and not is_ignored_name(path.name)


@dataclass
class ScannedFile:
    path: Path
    size: int
    mtime_ns: int
    problem: str | None = None
    """Why the file cannot be read at all (broken link, not a regular file), or None."""


def scan_file(path: Path) -> ScannedFile:
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            return ScannedFile(path, 0, 0, f"broken symbolic link (points to {os.readlink(path)})")
        raise
    except OSError as exc:
        return ScannedFile(path, 0, 0, f"cannot stat file: {exc.strerror or exc}")
    if not stat.S_ISREG(info.st_mode):
        return ScannedFile(path, 0, info.st_mtime_ns, "not a regular file")
    return ScannedFile(path, info.st_size, info.st_mtime_ns)


def scan_folder(root: Path, exclude: Path | None = None) -> Iterator[ScannedFile]:
    """Every supported file under ``root``, recursively, skipping hidden and junk folders.

    Symbolic links to folders are not followed (they can loop or leave the folder);
    links to files are read through. ``exclude`` (the data folder) is never entered.
    """
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if is_ignored_name(entry.name):
                continue
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    if exclude is None or path != exclude:
                        stack.append(path)
                    continue
            except OSError:
                continue
            if file_type_of(path) in SUPPORTED_EXTENSIONS:
                yield scan_file(path)
