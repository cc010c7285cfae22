"""Which files in a folder are documents to index, and which are noise to skip."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from llm_engineering.index_store.read.readers import SUPPORTED_EXTENSIONS, file_type_of
from llm_engineering.paths import is_inside, name_problem

__all__ = [
    "UNREADABLE_FOLDER",
    "ScannedFile",
    "is_ignored_name",
    "is_supported",
    "leads_out",
    "scan_file",
    "scan_folder",
]

_IGNORED_DIRS = frozenset({"node_modules", "__pycache__", "venv", "site-packages", "dist-packages"})
UNREADABLE_FOLDER = "cannot read folder"
"""How the problem of a folder that cannot be listed begins (the watcher retries those)."""


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


def leads_out(path: Path, roots: Sequence[Path] | None) -> str | None:
    """Why ``path`` must not be read: a link (of it or a folder above it) leaving ``roots``.

    ``None`` when it resolves inside one of ``roots`` (or no roots are given). The message
    names the link's own text, never what lies at its target.
    """
    if not roots or is_inside(path, roots):
        return None
    target = os.readlink(path) if path.is_symlink() else None
    via = f" (it points to {target})" if target is not None else ""
    return f"symbolic link leading outside the watched folders{via}; skipped, never read"


def scan_file(
    path: Path, roots: Sequence[Path] | None = None, known_inside: bool = False
) -> ScannedFile:
    """Size and mtime of ``path``, or the problem that keeps it from being read (a name that
    is not UTF-8, a link leading out, not a regular file).

    Args:
        roots: The folders it may resolve into; a link leading out of them is a problem.
        known_inside: The caller knows ``path`` resolves inside ``roots`` (a file that is no
            link, found in a folder that does): it is not resolved again.
    """
    problem = name_problem(path) or (None if known_inside else leads_out(path, roots))
    if problem is not None:
        return ScannedFile(path, 0, 0, problem)
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            return ScannedFile(path, 0, 0, f"broken symbolic link (points to {os.readlink(path)})")
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP and path.is_symlink():
            return ScannedFile(path, 0, 0, f"symbolic link loop (points to {os.readlink(path)})")
        return ScannedFile(path, 0, 0, f"cannot stat file: {exc.strerror or exc}")
    if not stat.S_ISREG(info.st_mode):
        return ScannedFile(path, 0, info.st_mtime_ns, "not a regular file")
    return ScannedFile(path, info.st_size, info.st_mtime_ns)


def scan_folder(
    root: Path, exclude: Path | None = None, roots: Sequence[Path] | None = None
) -> Iterator[ScannedFile]:
    """Every supported file under ``root``, recursively, skipping hidden and junk folders.

    Symbolic links to folders are not followed (they can loop, and one inside is indexed
    under its real path already); one leading out of ``roots`` is reported with its
    problem. Links to files are read through only when they resolve inside ``roots``.
    ``exclude`` (the data folder) is never entered. A folder that cannot be listed is
    reported with its problem, so it is never skipped silently.

    Only links are resolved: the walk enters no linked folder, so a file that is no link,
    below a ``root`` inside ``roots``, is inside too (resolving every file was 44 % of an
    unchanged re-index). A file is checked again, resolved, before it is read.
    """
    root_inside = is_inside(root, roots) if roots else False
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:  # deleted while the scan went on
            continue
        except OSError as exc:
            why = f"{UNREADABLE_FOLDER}: {exc.strerror or exc}"
            yield ScannedFile(folder, 0, 0, f"{why}; its files are indexed once it can be read")
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
                if entry.is_symlink() and entry.is_dir():
                    outside = leads_out(path, roots)
                    if outside is not None:
                        yield ScannedFile(path, 0, 0, outside.replace("skipped", "not followed"))
                    continue
            except OSError:  # a link in a loop: only a file's name says to report it
                if not entry.is_symlink():
                    continue
            if file_type_of(path) in SUPPORTED_EXTENSIONS:
                yield scan_file(path, roots, root_inside and not entry.is_symlink())
