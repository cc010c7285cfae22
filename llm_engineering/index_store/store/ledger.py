"""The index's ledger in ``state.sqlite``: the files seen and their chunks.

SQLite is the source of truth for what is indexed. Each file's row and its chunk rows
change in one transaction, and the FTS5 table (BM25 ranking, Porter stemming) follows
the chunk rows through triggers, so the keyword index (``keyword.py`` queries it) can
never disagree with them. Chroma holds one vector per chunk row, under the same id.
Every path is written and looked up as :func:`.names.path_text` gives it, so a name that
is not UTF-8 (which SQLite cannot take) is one row under its escaped text.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from llm_engineering.index_store.store.schema import MIGRATIONS
from llm_engineering.paths import path_text
from llm_engineering.storage import Storage

__all__ = ["MIGRATIONS", "ChunkInFile", "ChunkRow", "FileRow", "Ledger"]

T = TypeVar("T")


@dataclass
class FileRow:
    path: str
    root: str
    rel_path: str
    file_type: str
    size: int
    mtime_ns: int
    sha256: str | None
    status: str
    """``indexed`` or ``failed``."""
    error: str | None = None
    title: str | None = None
    chunk_count: int = 0
    updated_at: float = 0.0


@dataclass
class ChunkRow:
    id: str
    path: str
    ordinal: int
    text_hash: str
    text: str
    heading: str = ""
    page: int | None = None
    start_line: int | None = None
    end_line: int | None = None


@dataclass
class ChunkInFile:
    """A chunk with what search results show of its file."""

    id: str
    path: str
    rel_path: str
    title: str | None
    file_type: str
    text: str
    heading: str
    page: int | None
    start_line: int | None
    end_line: int | None
    ordinal: int


def _replace(
    db: sqlite3.Connection,
    row: FileRow,
    chunks: Sequence[ChunkRow],
    text: tuple[list[str], list[int] | None] | None,
) -> list[str]:
    """One file's rows written again (in the caller's transaction); its dropped chunk ids."""
    old = [r[0] for r in db.execute("SELECT id FROM chunks WHERE path = ?", (row.path,))]
    db.execute("DELETE FROM chunks WHERE path = ?", (row.path,))
    db.executemany(
        f"INSERT INTO chunks ({_CHUNK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (c.id, c.path, c.ordinal, c.text_hash, c.text, c.heading, c.page, c.start_line, c.end_line)
            for c in chunks
        ],
    )  # fmt: skip
    db.execute(
        f"INSERT INTO files ({_FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        f"ON CONFLICT(path) DO UPDATE SET {_UPSERT}",
        (
            row.path, row.root, row.rel_path, row.file_type, row.size, row.mtime_ns, row.sha256,
            row.status, row.error, row.title, row.chunk_count, row.updated_at,
        ),
    )  # fmt: skip
    db.execute("DELETE FROM document_text WHERE path = ?", (row.path,))
    if text is not None:
        units, pages = text
        db.execute(
            "INSERT INTO document_text VALUES (?, ?, ?)",
            (row.path, json.dumps(units), None if pages is None else json.dumps(pages)),
        )
    keep = {c.id for c in chunks}
    return [chunk_id for chunk_id in old if chunk_id not in keep]


_CHUNK_IN_FILE_COLUMNS = (
    "c.id, c.path, f.rel_path, f.title, f.file_type, c.text, c.heading, c.page, c.start_line, "
    "c.end_line, c.ordinal"
)


_FILE_COLUMNS = "path, root, rel_path, file_type, size, mtime_ns, sha256, status, error, title, chunk_count, updated_at"
_UPSERT = ", ".join(f"{c} = excluded.{c}" for c in _FILE_COLUMNS.split(", ")[1:])
"""A file row written again keeps its rowid and fires the tallies' update trigger."""
_CHUNK_COLUMNS = "id, path, ordinal, text_hash, text, heading, page, start_line, end_line"


def _file_row(row: Sequence[Any]) -> FileRow:
    return FileRow(*row)


class Ledger:
    """The files and chunks tables, and the generation counter readers watch.

    Args:
        storage: The opened ``state.sqlite``; the ledger's migrations are applied to it.
    """

    def __init__(self, storage: Storage):
        self.storage = storage
        storage.migrate(MIGRATIONS)

    @property
    def db(self) -> sqlite3.Connection:
        return self.storage.db

    def _change(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one write transaction that also bumps the generation."""

        def work_and_bump(db: sqlite3.Connection) -> T:
            result = work(db)
            db.execute(
                "INSERT INTO meta VALUES ('generation', '1') "
                "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )
            return result

        return self.storage.write(work_and_bump)

    # -- meta --------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def generation(self) -> int:
        """A counter every ledger write bumps: a reader compares it to notice another process's writes."""
        value = self.get_meta("generation")
        return int(value) if value else 0

    def set_meta(self, key: str, value: str) -> None:
        self._change(
            lambda db: db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        )

    def vectors_settled(self) -> bool:
        """Whether the last write to the index ended with Chroma holding exactly the chunks'
        vectors (no run stopped part way by a crash or an error since)."""
        return self.get_meta("vectors") == "settled"

    def mark_vectors(self, settled: bool) -> None:
        """Record that a write begins (False) or ended with the vectors in step (True). Not a
        change of the index: the generation stays."""
        value = "settled" if settled else "writing"
        if self.get_meta("vectors") != value:
            self.storage.write(
                lambda db: db.execute("INSERT OR REPLACE INTO meta VALUES ('vectors', ?)", (value,))
            )

    def chunked_by(self, version: str) -> bool:
        """Make every file be read again unless the index was chunked by ``version`` of the
        chunker (a new release cuts files differently); returns whether they will be.

        Only what changed is embedded again: chunks whose text is the same keep their vectors.
        """

        if self.get_meta("chunking") == version:  # a read: runs write nothing for it
            return False

        def work(db: sqlite3.Connection) -> bool:
            # Size and time never match 0 and NULL: the next scan reads and parses each file.
            stale = db.execute(
                "UPDATE files SET mtime_ns = 0, sha256 = NULL WHERE status = 'indexed'"
            ).rowcount
            db.execute("INSERT OR REPLACE INTO meta VALUES ('chunking', ?)", (version,))
            return stale > 0

        return self._change(work)

    # -- files -------------------------------------------------------------------------

    def file(self, path: str) -> FileRow | None:
        row = self.db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE path = ?", (path_text(path),)
        ).fetchone()
        return None if row is None else _file_row(row)

    def files_under(self, folder: str) -> dict[str, FileRow]:
        """Every known file whose path lies inside ``folder`` (whatever root it came from)."""
        prefix = path_text(folder).rstrip("/") + "/"
        rows = self.db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE substr(path, 1, ?) = ?", (len(prefix), prefix)
        )
        return {row[0]: _file_row(row) for row in rows}

    def roots(self) -> list[str]:
        """The folders the indexed files came from (watched, or given to an ingest), sorted."""
        return [row[0] for row in self.db.execute("SELECT DISTINCT root FROM files ORDER BY root")]

    def failed_files(self) -> list[FileRow]:
        rows = self.db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE status = 'failed' ORDER BY path"
        )
        return [_file_row(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Files indexed and failed, and chunks: the triggers' tallies, never a scan."""
        tallies = dict(self.db.execute("SELECT name, n FROM tallies").fetchall())
        return {
            "documents": tallies.get("files:indexed", 0),
            "failed": tallies.get("files:failed", 0),
            "chunks": tallies.get("chunks", 0),
        }

    def touch(self, path: str, size: int, mtime_ns: int) -> None:
        """Record a new size/mtime for a file whose content hash did not change."""
        self._change(
            lambda db: db.execute(
                "UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?",
                (size, mtime_ns, path_text(path)),
            )
        )

    def chunk_ids(self, path: str) -> list[str]:
        return [
            row[0]
            for row in self.db.execute(
                "SELECT id FROM chunks WHERE path = ? ORDER BY ordinal", (path_text(path),)
            )
        ]

    def replace_file(
        self,
        row: FileRow,
        chunks: Sequence[ChunkRow],
        text: tuple[list[str], list[int] | None] | None = None,
    ) -> list[str]:
        """Store a file, exactly these chunks and the text they came from, in one transaction.

        Args:
            text: (units, pages): the document's text as ``get_document`` serves it.

        Returns:
            The ids of the file's previous chunks that are not among the new ones.
        """
        return self.replace_files([(row, chunks, text)])

    def replace_files(
        self,
        files: Sequence[
            tuple[FileRow, Sequence[ChunkRow], tuple[list[str], list[int] | None] | None]
        ],
    ) -> list[str]:
        """:meth:`replace_file` for several files, in one transaction (one commit for the
        files an ingestion step completed, not one each).

        Returns:
            The ids of their previous chunks that are not among the new ones.
        """
        for row, chunks, _ in files:
            row.updated_at = time.time()
            row.chunk_count = len(chunks)
            # An error or title may quote a name that is not UTF-8 (a link's target) too.
            row.path, row.root, row.rel_path = map(path_text, (row.path, row.root, row.rel_path))
            row.error = None if row.error is None else path_text(row.error)
            row.title = None if row.title is None else path_text(row.title)

        def work(db: sqlite3.Connection) -> list[str]:
            stale: list[str] = []
            for row, chunks, text in files:
                stale += _replace(db, row, chunks, text)
            return stale

        return self._change(work) if files else []

    def remove_files(
        self, paths: Iterable[str], text_hashes: dict[str, str] | None = None
    ) -> list[str]:
        """Forget files and their chunks. Returns the removed chunk ids.

        Args:
            text_hashes: Filled with text hash -> removed chunk id, for callers that reuse
                the vectors before deleting them.
        """
        paths = [path_text(path) for path in paths]

        def work(db: sqlite3.Connection) -> list[str]:
            removed: list[str] = []
            for path in paths:
                for chunk_id, digest in db.execute(
                    "SELECT id, text_hash FROM chunks WHERE path = ?", (path,)
                ):
                    removed.append(chunk_id)
                    if text_hashes is not None:
                        text_hashes.setdefault(digest, chunk_id)
                db.execute("DELETE FROM chunks WHERE path = ?", (path,))
                db.execute("DELETE FROM files WHERE path = ?", (path,))
                db.execute("DELETE FROM document_text WHERE path = ?", (path,))
            return removed

        return self._change(work) if paths else []

    def clear(self) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM chunks")
            db.execute("DELETE FROM files")
            db.execute("DELETE FROM document_text")

        self._change(work)

    def document_text(self, path: str) -> tuple[list[str], list[int] | None] | None:
        """(units, pages) stored for ``path`` when it was indexed; None if none was stored."""
        row = self.db.execute(
            "SELECT units, pages FROM document_text WHERE path = ?", (path_text(path),)
        ).fetchone()
        if row is None:
            return None
        return json.loads(row[0]), None if row[1] is None else json.loads(row[1])

    def chunk(self, chunk_id: str) -> ChunkRow | None:
        row = self.db.execute(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id = ?", (chunk_id,)
        ).fetchone()
        return None if row is None else ChunkRow(*row)

    def list_files(
        self, where: str, params: Sequence[Any], order: str, limit: int
    ) -> list[FileRow]:
        """File rows matching an SQL condition (built by the caller from fixed clauses)."""
        rows = self.db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE {where} ORDER BY {order} LIMIT ?",
            [*params, limit],
        )
        return [_file_row(row) for row in rows]

    def count_files(self, where: str, params: Sequence[Any]) -> dict[str, int]:
        """Files by status among those matching an SQL condition (a scan of those rows: with no
        condition, read :meth:`counts`)."""
        rows = self.db.execute(
            f"SELECT status, count(*) FROM files WHERE {where} GROUP BY status", list(params)
        )
        return dict(rows.fetchall())

    # -- chunks ------------------------------------------------------------------------

    def ids_with_text_hashes(self, hashes: Iterable[str]) -> dict[str, str]:
        """One existing chunk id for each of ``hashes`` that is already indexed."""
        found: dict[str, str] = {}
        hashes = list(set(hashes))
        for start in range(0, len(hashes), 500):
            batch = hashes[start : start + 500]
            marks = ",".join("?" * len(batch))
            for text_digest, chunk_id in self.db.execute(
                f"SELECT text_hash, min(id) FROM chunks WHERE text_hash IN ({marks}) GROUP BY text_hash",
                batch,
            ):
                found[text_digest] = chunk_id
        return found

    def all_chunk_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT id FROM chunks")}

    def chunks_by_ids(self, ids: Sequence[str]) -> dict[str, ChunkInFile]:
        """Chunk rows joined with their file, keyed by id (ids no longer indexed are left out)."""
        found: dict[str, ChunkInFile] = {}
        ids = list(ids)
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            cursor = self.db.execute(
                f"SELECT {_CHUNK_IN_FILE_COLUMNS} FROM chunks c JOIN files f ON f.path = c.path "
                f"WHERE c.id IN ({marks})",
                batch,
            )
            for row in cursor:
                found[row[0]] = ChunkInFile(*row)
        return found
