"""Paths whose names are not valid UTF-8: how the index writes them, and why it never reads them.

A POSIX file name is bytes. Python hands a name that is not UTF-8 over as text holding lone
surrogates (``bad-\\udcff.md``), which neither SQLite nor JSON (the MCP stream, the parse
workers' frames) can carry: one such name used to stop all indexing. Such a file is not
read; it is one failed entry whose path shows each undecodable byte as ``\\xNN``, and every
path that reaches the ledger goes through :func:`path_text`, so the watcher's report of its
deletion (the raw name again) finds that entry.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["name_problem", "path_text"]


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
