"""The one rule for paths a caller names: inside the allowed folders, after every link.

Every path that comes from outside (a tool argument, a dataset path, a resource URI) goes
through :func:`confine`. It resolves ``~``, ``..`` and symbolic links, of the path and of
the roots themselves (a watched folder that is itself a link still matches), and refuses
anything that then lies outside every root: a link placed inside a folder that points out
of it is refused like a plain outside path, and ``/data/docs-secret`` never passes for
being "under" ``/data/docs``.

Names that are not valid UTF-8 (:func:`path_text`, :func:`name_problem`): a POSIX file name
is bytes, and Python hands one that is not UTF-8 over as text holding lone surrogates (``bad-\\udcff.md``), which neither SQLite nor JSON (the MCP stream, the parse
workers' frames) can carry: one such name used to stop all indexing. Such a file is not
read; it is one failed entry whose path shows each undecodable byte as ``\\xNN``, and every
path that reaches the ledger goes through :func:`path_text`, so the watcher's report of its
deletion (the raw name again) finds that entry.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from llm_engineering.errors import PathError

__all__ = [
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "check_name",
    "confine",
    "is_inside",
    "name_problem",
    "path_text",
]

MAX_NAME_BYTES = 255
"""Longest file or folder name (one path component) Linux, macOS and Windows file systems take."""
MAX_PATH_BYTES = 4096
"""Longest whole path Linux takes (PATH_MAX)."""


ROOTS_TTL = 2.0
"""Seconds :func:`is_inside` keeps the roots' resolved paths: a scan asks for each of 500,000
files, and resolving the roots again for each doubled its cost. The file is resolved every
time; a root re-pointed meanwhile can only refuse a file for that long, never admit one
outside the folder the user watched."""
_roots_seen: dict[tuple[str, ...], tuple[float, list[Path]]] = {}


def is_inside(path: Path, roots: Sequence[Path]) -> bool:
    """Whether ``path`` (links resolved) is one of ``roots`` or lies below one (links resolved)."""
    resolved = Path(os.path.realpath(path))
    return any(resolved == root or root in resolved.parents for root in _real_recent(roots))


def _real_recent(roots: Sequence[Path]) -> list[Path]:
    key, now = tuple(map(str, roots)), time.monotonic()
    seen = _roots_seen.get(key)
    if seen is not None and now - seen[0] < ROOTS_TTL:
        return seen[1]
    real = _real(roots)
    if len(_roots_seen) > 64:
        _roots_seen.clear()
    _roots_seen[key] = (now, real)
    return real


def confine(
    path: str | Path,
    roots: Sequence[Path],
    *,
    what: str = "path",
    relative_to: Path | None = None,
    roots_name: str = "the allowed folders",
    kind: Literal["file", "any"] = "any",
) -> Path:
    """``path`` resolved, insisting it lies inside one of ``roots`` and exists.

    Args:
        path: What the caller named.
        roots: The folders it must lie in.
        what: How messages name the argument (``dataset_path``, ``path``).
        relative_to: Where a relative path is taken; ``None`` refuses relative paths.
        roots_name: How messages name the roots (``the watched folders``).
        kind: ``file`` also refuses folders.

    Returns:
        The resolved path.

    Raises:
        PathError: it is relative with no ``relative_to``, lies outside every root once
            resolved, does not exist, or is not a file when ``kind`` is ``file``.
    """
    check_name(str(path), what)
    raw = Path(path).expanduser()
    if not raw.is_absolute():
        if relative_to is None:
            raise PathError(
                f"{what} {raw} must be absolute (or a path inside a watched folder given in full)"
            )
        raw = relative_to / raw
    try:
        resolved = Path(os.path.realpath(raw))
        allowed = _real(roots)
        if not any(resolved == root or root in resolved.parents for root in allowed):
            names = ", ".join(str(r) for r in allowed) or "(none configured)"
            via = f" (it resolves to {resolved})" if resolved != raw else ""
            raise PathError(f"{what} {raw}{via} is outside {roots_name} ({names})")
        if not resolved.exists():
            raise PathError(f"{what} {raw} does not exist")
        if kind == "file" and not resolved.is_file():
            raise PathError(f"{what} {raw} is not a file")
    except OSError as exc:  # a loop of links, a name the file system refuses
        raise PathError(f"{what} {raw} cannot be opened: {exc.strerror or exc}") from None
    return resolved


def check_name(path: str, what: str = "path") -> None:
    """Refuse what no file system path can be: a NUL byte, a name over ``MAX_NAME_BYTES``,
    a whole path over ``MAX_PATH_BYTES`` (the message says which, and the limit).

    Raises:
        PathError: one of those.
    """
    if "\x00" in path:
        raise PathError(f"{what} contains a NUL byte (\\x00), which no file name can hold")
    try:
        encoded = os.fsencode(path)
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        raise PathError(f"{what} {path!r} holds characters no file name can hold") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise PathError(
            f"{what} is {len(encoded):,} bytes long; paths are at most {MAX_PATH_BYTES:,} bytes"
        )
    for part in encoded.split(b"/"):
        if len(part) > MAX_NAME_BYTES:
            shown = os.fsdecode(part[:40]) + "..."
            raise PathError(
                f"{what} has a name of {len(part):,} bytes ({shown!r}); file and folder names "
                f"are at most {MAX_NAME_BYTES} bytes"
            )


def _real(roots: Sequence[Path]) -> list[Path]:
    return [Path(os.path.realpath(Path(root).expanduser())) for root in roots]


# -- names that are not UTF-8 -------------------------------------------------------------


def path_text(path: str | Path) -> str:
    """``path`` as text that UTF-8 can carry: itself, or with each undecodable byte as ``\\xNN``.

    Distinct paths keep distinct texts unless a valid name spells those escapes out itself.
    """
    text = str(path)
    if text.isascii():
        return text
    try:
        text.encode()
        return text
    except UnicodeEncodeError:
        pass
    try:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no file name produced (a JSON \\ud800)
        return text.encode("utf-8", "backslashreplace").decode()


def name_problem(path: Path) -> str | None:
    """Why ``path`` is not read because of its name (a part not valid UTF-8), or None."""
    if path_text(path) == str(path):
        return None
    if path_text(path.name) != path.name:
        return (
            "file name is not valid UTF-8 (its undecodable bytes are shown as \\xNN); "
            "rename the file to index it"
        )
    folder = next(part for part in path.parent.parts if path_text(part) != part)
    return (
        f"folder name '{path_text(folder)}' in its path is not valid UTF-8 (its undecodable "
        "bytes are shown as \\xNN); rename the folder to index the files in it"
    )
