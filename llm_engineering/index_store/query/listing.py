"""Listing indexed, pending and failed documents: filters, sort and cursor paging.

Indexed and failed files come from the ledger (keyset paging in SQL, so a page costs the
same deep into 100,000 files); pending ones are the watcher's queue and, while an ingest
runs, the files on disk it has not reached. A cursor is the last row's sort key, so a
file added or removed between two pages never makes another repeat or go missing.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from llm_engineering.errors import UserError
from llm_engineering.index_store.read.readers import file_type_of
from llm_engineering.index_store.read.scanning import is_supported, scan_file, scan_folder
from llm_engineering.index_store.store.ledger import FileRow, Ledger
from llm_engineering.paths import path_text
from llm_engineering.storage import prefix_sql

__all__ = [
    "MAX_LIMIT",
    "DocumentInfo",
    "DocumentPage",
    "Sort",
    "Status",
    "list_documents",
    "parse_time",
]

Status = Literal["indexed", "pending", "failed"]
Sort = Literal["path", "modified"]
MAX_LIMIT = 500


_EARLIEST = datetime(1, 1, 2, tzinfo=UTC).timestamp()
_LATEST = datetime(9999, 12, 30, tzinfo=UTC).timestamp()


def parse_time(value: str) -> float:
    """Seconds since the epoch from ISO 8601 (``2026-11-01``, ``...T10:00:00Z``) or a number.

    Raises:
        UserError: neither.
    """
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or not _EARLIEST <= seconds <= _LATEST:
            raise UserError(
                f"modified_after {value!r} is not a time: seconds since the epoch must be a "
                f"finite number from {_EARLIEST:.0f} to {_LATEST:.0f} (years 1-9999), or use "
                "ISO 8601 (2026-11-01T10:00:00Z)"
            )
        return seconds
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.astimezone()
        return moment.timestamp()
    except (ValueError, OverflowError, OSError):
        raise UserError(
            f"modified_after {value!r} is not a date: use ISO 8601 (2026-11-01T10:00:00Z) "
            "or seconds since the epoch"
        ) from None


@dataclass
class DocumentInfo:
    path: str
    rel_path: str
    uri: str
    title: str
    file_type: str
    size: int
    modified: float
    """Last modification, seconds since the epoch."""
    chunk_count: int
    status: Status
    error: str | None = None


@dataclass
class DocumentPage:
    documents: list[DocumentInfo]
    next_cursor: str | None
    """Pass it back as ``cursor`` for the next page; None on the last page."""
    totals: dict[str, int]
    """Files per status under the filters (every page, not just this one)."""


def list_documents(
    ledger: Ledger,
    folders: Sequence[Path],
    uri: Callable[[str], str],
    *,
    path_prefix: str | None = None,
    file_types: Sequence[str] | None = None,
    status: Sequence[str] | None = None,
    modified_after: float | None = None,
    sort: str = "path",
    limit: int = 50,
    cursor: str | None = None,
    pending: Iterable[Path] = (),
    scan: bool = False,
) -> DocumentPage:
    """Indexed, pending and failed files, filtered, sorted and paged by cursor.

    Args:
        pending: Paths known to wait for indexing (the watcher's queue).
        scan: Also walk the watched folders for files not indexed yet (an ingest runs).

    Raises:
        UserError: a bad cursor, sort, status or limit.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise UserError(f"limit must be between 1 and {MAX_LIMIT}")
    if sort not in ("path", "modified"):
        raise UserError("sort must be path or modified")
    by: Sort = "modified" if sort == "modified" else "path"
    wanted = set(status or ("indexed", "pending", "failed"))
    if not wanted <= {"indexed", "pending", "failed"}:
        raise UserError("status must be indexed, pending or failed")
    types = [t.lower().lstrip(".") for t in file_types or []]
    after = _decode_cursor(cursor, by) if cursor else None

    waiting = _pending_rows(ledger, folders, pending, scan)
    candidates = [r for r in waiting if _matches(r, path_prefix, types, modified_after)]
    where, params = _filter_sql(path_prefix, types, modified_after)
    totals = {"indexed": 0, "pending": len(candidates), "failed": 0}
    if path_prefix or types or modified_after is not None:
        counted = ledger.count_files(where, params)
    else:  # the triggers' tallies: no scan of the files
        tallies = ledger.counts()
        counted = {"indexed": tallies["documents"], "failed": tallies["failed"]}
    stale = {r.path for r in waiting} & {
        r.path for r in candidates if ledger.file(r.path) is not None
    }
    for key in ("indexed", "failed"):
        totals[key] = counted.get(key, 0)
    totals["indexed"] -= len(stale)

    rows: list[FileRow] = []
    ledger_statuses = sorted(wanted - {"pending"})
    if ledger_statuses:
        page_where, page_params = where, list(params)
        page_where += f" AND status IN ({','.join('?' * len(ledger_statuses))})"
        page_params += ledger_statuses
        if after is not None:
            clause, values = _after_sql(by, after)
            page_where += f" AND {clause}"
            page_params += values
        order = "path" if by == "path" else "mtime_ns DESC, path"
        fetched = ledger.list_files(page_where, page_params, order, limit + 1 + len(stale))
        rows = [r for r in fetched if r.path not in stale]
    if "pending" in wanted:
        rows += [r for r in candidates if after is None or _is_after(r, by, after)]
    rows.sort(key=lambda r: _sort_key(r, by))
    page, more = rows[:limit], len(rows) > limit
    return DocumentPage(
        documents=[_info(r, uri) for r in page],
        next_cursor=_encode_cursor(page[-1], by) if more and page else None,
        totals=totals,
    )


def _pending_rows(
    ledger: Ledger, folders: Sequence[Path], queued: Iterable[Path], scan: bool
) -> list[FileRow]:
    found: dict[str, FileRow] = {}
    scanned = [scan_file(p, folders) for p in queued if p.is_file() and is_supported(p)]
    if scan:
        for folder in folders:
            scanned.extend(scan_folder(folder, roots=folders))
    for item in scanned:
        path = path_text(item.path)
        if path in found:
            continue
        old = ledger.file(path)
        if old is not None and old.size == item.size and old.mtime_ns == item.mtime_ns:
            continue
        root = next((f for f in folders if f in item.path.parents), item.path.parent)
        found[path] = FileRow(
            path, path_text(root), path_text(item.path.relative_to(root)),
            file_type_of(item.path), item.size, item.mtime_ns, None, "pending",
        )  # fmt: skip
    return list(found.values())


def _info(row: FileRow, uri: Callable[[str], str]) -> DocumentInfo:
    return DocumentInfo(
        path=row.path, rel_path=row.rel_path, uri=uri(row.path),
        title=row.title or Path(row.path).name, file_type=row.file_type, size=row.size,
        modified=row.mtime_ns / 1e9, chunk_count=row.chunk_count,
        status=row.status,  # type: ignore[arg-type]
        error=row.error,
    )  # fmt: skip


# -- listing filters and cursors ----------------------------------------------------------


def _filter_sql(
    path_prefix: str | None, types: list[str], modified_after: float | None
) -> tuple[str, list[object]]:
    clauses, params = ["1 = 1"], []
    if path_prefix:
        condition, values = prefix_sql(
            "path" if path_prefix.startswith("/") else "rel_path", path_prefix
        )
        clauses.append(condition)
        params += values
    if types:
        clauses.append(f"file_type IN ({','.join('?' * len(types))})")
        params += types
    if modified_after is not None:
        clauses.append("mtime_ns > ?")
        params.append(int(modified_after * 1e9))
    return " AND ".join(clauses), params


def _matches(
    row: FileRow, path_prefix: str | None, types: list[str], modified_after: float | None
) -> bool:
    if path_prefix:
        target = row.path if path_prefix.startswith("/") else row.rel_path
        if not target.startswith(path_prefix):
            return False
    if types and row.file_type not in types:
        return False
    return modified_after is None or row.mtime_ns > modified_after * 1e9


def _sort_key(row: FileRow, sort: Sort) -> tuple[int, str]:
    return (0 if sort == "path" else -row.mtime_ns, row.path)


def _is_after(row: FileRow, sort: Sort, after: tuple[int, str]) -> bool:
    return _sort_key(row, sort) > (-after[0] if sort == "modified" else 0, after[1])


def _after_sql(sort: Sort, after: tuple[int, str]) -> tuple[str, list[object]]:
    mtime, path = after
    if sort == "path":
        return "path > ?", [path]
    # The first term is a range the index on (mtime_ns DESC, path) seeks to.
    return "mtime_ns <= ? AND (mtime_ns < ? OR path > ?)", [mtime, mtime, path]


def _encode_cursor(row: FileRow, sort: Sort) -> str:
    raw = json.dumps({"s": sort, "m": row.mtime_ns, "p": row.path})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str, sort: Sort) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        mtime, path, made_for = int(data["m"]), str(data["p"]), data["s"]
    except (ValueError, KeyError, TypeError):
        raise UserError("cursor is not one this server gave: start again without it") from None
    if made_for != sort:
        raise UserError(f"that cursor belongs to a listing sorted by {made_for}, not {sort}")
    return mtime, path
