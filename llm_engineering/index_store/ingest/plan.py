"""What a run is to do: the files to index for the paths it is given, and the indexed ones
that are gone; each file with the folder it belongs to (a watched folder, or the one named)."""

from __future__ import annotations

import errno
import logging
import stat
from collections.abc import Sequence
from pathlib import Path

from llm_engineering.errors import PathError
from llm_engineering.index_store.read.readers import file_type_of
from llm_engineering.index_store.read.scanning import (
    ScannedFile,
    is_supported,
    scan_file,
    scan_folder,
)
from llm_engineering.index_store.store.ledger import Ledger
from llm_engineering.paths import path_text

__all__ = ["Plan", "Planner"]

log = logging.getLogger(__name__)

Plan = list[tuple[ScannedFile, Path]]
"""Files to index, each with the watched folder (or the folder named) it belongs to."""


class Planner:
    """Turns paths into a :data:`Plan` and the indexed paths that are gone.

    Args:
        ledger: What is indexed now.
        watch: The watched folders (where links may lead, and what a file belongs to).
        data_dir: The data folder, never scanned even when it lies in a watched folder.
    """

    def __init__(self, ledger: Ledger, watch: Sequence[Path], data_dir: Path):
        self._ledger = ledger
        self._watch = list(watch)
        self._data_dir = data_dir

    def plan(self, targets: Sequence[Path], strict: bool) -> tuple[Plan, list[str]]:
        """The files to index for ``targets``, and the indexed paths that are gone.

        Raises:
            PathError: (``strict`` only) a target does not exist, cannot be looked at, or is
                not supported.
        """
        plan: Plan = []
        gone: list[str] = []
        for target in targets:
            target = target.expanduser().absolute()
            try:
                kind = _kind(target)
            except OSError as exc:  # a folder above it cannot be searched
                if strict:
                    raise PathError(f"cannot ingest {target}: {exc.strerror or exc}") from exc
                # The folder's own scan fails it (its permissions changed: it had an event).
                log.info("cannot look at %s (%s); left as it is", target, exc.strerror or exc)
                continue
            if kind == "missing":
                if strict:
                    raise PathError(f"cannot ingest {target}: no such file or folder")
                gone += self.known_at(target)
            elif kind == "folder":
                target = target.resolve()
                seen = set()
                roots = self.roots(target)
                for scanned in scan_folder(target, exclude=self._data_dir, roots=roots):
                    plan.append((scanned, self.root_for(scanned.path, target)))
                    seen.add(path_text(scanned.path))
                gone += [path for path in self._ledger.files_under(str(target)) if path not in seen]
                if path_text(target) not in seen:  # its own entry, from when it could not be read
                    gone += [path_text(target)] if self._ledger.file(str(target)) else []
            elif kind == "file":
                if not is_supported(target):
                    if strict:
                        raise PathError(
                            f"cannot ingest {target}: '.{file_type_of(target)}' files are not supported "
                            f"(see `llm-eng status` for the supported types)"
                        )
                    continue
                scanned = scan_file(target, self.roots(target.parent))
                plan.append((scanned, self.root_for(target, target.parent)))
            elif strict:
                raise PathError(f"cannot ingest {target}: not a regular file or folder")
        # A folder and a file inside it may both be named (the watcher does that): once each.
        unique = {str(scanned.path): (scanned, root) for scanned, root in reversed(plan)}
        plan = [unique[key] for key in dict.fromkeys(str(scanned.path) for scanned, _ in plan)]
        return plan, gone

    def roots(self, folder: Path) -> list[Path]:
        """Where links may lead from files found under ``folder``: the watched folders and it."""
        return [*self._watch, folder]

    def root_for(self, path: Path, default: Path) -> Path:
        """The watched folder ``path`` lies in, else ``default`` (the folder named)."""
        for folder in self._watch:
            if path == folder or folder in path.parents:
                return folder
        return default

    def known_at(self, target: Path) -> list[str]:
        """The indexed files at ``target`` (a file) or under it (a folder)."""
        key = path_text(target)
        return [*self._ledger.files_under(key), *([key] if self._ledger.file(key) else [])]


def _kind(target: Path) -> str:
    """``folder``, ``file`` (a link that leads nowhere too: the scan reports it), ``missing``
    or ``other``.

    Raises:
        OSError: ``target`` cannot be looked at (a folder above it cannot be searched).
    """
    try:
        info = target.stat()
    except (FileNotFoundError, NotADirectoryError):
        return "file" if target.is_symlink() else "missing"
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        return "file"
    if stat.S_ISDIR(info.st_mode):
        return "folder"
    return "file" if stat.S_ISREG(info.st_mode) else "other"
