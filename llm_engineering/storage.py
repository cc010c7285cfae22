"""``state.sqlite``: one SQLite file the services keep their tables in.

This module holds what they share: the connection (one per thread, WAL mode), write
transactions, and the migration runner. Each owner registers its own named migrations
(``m001_create_tables``, as in simonw/llm) and applies them when it opens the file; the
``migrations`` table records each name once, so a migration runs once per file, whichever
process opens the file first. Names are unique across owners: number new ones after the
highest in the package.

Beside it, small JSON files (a job's records, the writer's progress) are replaced whole
with :func:`write_whole`.

Two failures are named for what they are, whichever statement meets them: a file SQLite
cannot read raises :class:`~llm_engineering.errors.StateFileDamaged` (which file, and the
command that remakes it), a full disk :class:`~llm_engineering.errors.DiskFullError`.
"""

from __future__ import annotations

import errno
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from llm_engineering.errors import DiskFullError, LlmEngError, StateFileDamaged

__all__ = [
    "DAMAGED_SUFFIX",
    "LEGACY_MIGRATIONS",
    "Migration",
    "Migrations",
    "Storage",
    "is_disk_full",
    "no_space_left",
    "prefix_sql",
    "run_script",
    "write_whole",
]

T = TypeVar("T")
Migration = Callable[[sqlite3.Connection], None]

# Before migrations were recorded by name, ``PRAGMA user_version`` counted how many of these
# had run, in this order.
LEGACY_MIGRATIONS = ("m001_create_tables", "m002_keyword_vocabulary", "m003_jobs")

_NAME = re.compile(r"m\d{3}_\w+")

DAMAGED_SUFFIX = ".damaged"
"""A damaged ``state.sqlite`` that ``ingest --rebuild`` replaced is kept beside it, renamed so."""
_DAMAGED_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def free_space(folder: Path) -> str:
    """What is free on ``folder``'s disk, for a message (``?`` if it cannot be read)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "?"
    return f"{free / 1048576:.1f} MB" if free >= 1048576 else f"{free / 1024:.0f} KB"


def no_space_left(data_dir: Path) -> DiskFullError:
    """The error for a write that found the data folder's disk full."""
    return DiskFullError(
        f"no space left on the data folder's disk ({data_dir}, {free_space(data_dir)} free): "
        "free some space there or move the data folder (--data-dir); what could not be written "
        "is indexed once writes succeed again (a running server resumes by itself)"
    )


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says a disk was full (an OSError, SQLite's SQLITE_FULL, or Chroma's
    message for either)."""
    if isinstance(exc, DiskFullError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    text = str(exc).lower()
    return "disk is full" in text or "no space left" in text


def write_whole(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a reader polling it sees the old file or the new one,
    never half of one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Run statements one by one: ``executescript`` would commit the caller's transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement: {statement!r}")


class Migrations:
    """One owner's migrations, applied in the order they were registered."""

    def __init__(self) -> None:
        self._steps: list[Migration] = []

    def register(self, step: Migration) -> Migration:
        """Add ``step`` (a decorator). Its name, ``mNNN_what``, is what the file records.

        Raises:
            ValueError: the name is not ``mNNN_...`` or is registered already.
        """
        name = step.__name__
        if not _NAME.fullmatch(name):
            raise ValueError(f"migration {name!r}: name it mNNN_what_it_does")
        if name in self.names:
            raise ValueError(f"migration {name!r} is registered twice")
        self._steps.append(step)
        return step

    @property
    def names(self) -> list[str]:
        return [step.__name__ for step in self._steps]

    def __iter__(self) -> Iterator[Migration]:
        return iter(self._steps)


class _Connection(sqlite3.Connection):
    """A connection whose statements name what a damaged file or a full disk is."""

    storage: Storage

    def execute(self, *args: Any) -> sqlite3.Cursor:
        try:
            return super().execute(*args)
        except sqlite3.DatabaseError as exc:
            raise self.storage.named(exc) from exc

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        try:
            return super().executemany(*args)
        except sqlite3.DatabaseError as exc:
            raise self.storage.named(exc) from exc


class Storage:
    """Thread-safe access to one SQLite file (one connection per thread, WAL mode)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection, in autocommit mode: reads need no transaction.

        Raises:
            StateFileDamaged: SQLite cannot read the file (its first statement says so).
        """
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=30.0,
                isolation_level=None,
                check_same_thread=False,
                factory=_Connection,
            )
            conn.storage = self
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA busy_timeout=30000")
            except LlmEngError:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    def named(self, exc: sqlite3.DatabaseError) -> Exception:
        """``exc`` as the error that names its cause, when it is a damaged file or a full disk."""
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code in _DAMAGED_CODES:
            return StateFileDamaged(
                f"{self.path} is damaged (SQLite: {exc}), so nothing can be read from it. Remake "
                f"it with `llm-eng ingest --rebuild FOLDER --data-dir {self.path.parent}`: the "
                "watched folders are indexed again, training jobs and adapters are kept, and the "
                f"damaged file is kept as {self.path.name}{DAMAGED_SUFFIX}. Or put back a copy of "
                "it from a backup. Then start the server again."
            )
        if code == sqlite3.SQLITE_FULL:
            return no_space_left(self.path.parent)
        return exc

    def damaged(self) -> StateFileDamaged | None:
        """Why the file cannot be read, or None when it can (or does not exist yet)."""
        try:
            self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except StateFileDamaged as exc:
            return exc
        return None

    def set_aside(self) -> Path:
        """Move the (damaged) file and its WAL aside, so that the next use starts a new one.

        Returns:
            Where the file is now.
        """
        self.close()
        aside = self.path.with_name(self.path.name + DAMAGED_SUFFIX)
        for suffix in ("", "-wal", "-shm"):
            part = self.path.with_name(self.path.name + suffix)
            if part.exists():
                part.replace(aside.with_name(aside.name + suffix))
        return aside

    def close(self) -> None:
        """Close this thread's connection (the next use opens a new one)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one write transaction: all of it commits, or none of it.

        ``BEGIN IMMEDIATE`` takes the write lock up front, so two writers wait for each other
        (up to the busy timeout) instead of failing half-way.

        Returns:
            What ``work`` returns.
        """
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
            db.execute("COMMIT")
            return result
        except BaseException:
            # SQLite has rolled back by itself after some errors (a full disk): a ROLLBACK then
            # fails and would hide the error that matters.
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def migrate(self, migrations: Migrations) -> list[str]:
        """Apply the migrations this file has not recorded yet, in one transaction.

        Returns:
            The names applied now.
        """

        def work(db: sqlite3.Connection) -> list[str]:
            applied = _recorded(db)
            ran: list[str] = []
            for step in migrations:
                name = step.__name__
                if name in applied:
                    continue
                step(db)
                db.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
                applied.add(name)
                ran.append(name)
            _sync_user_version(db, applied)
            return ran

        return self.write(work)

    def applied_migrations(self) -> list[str]:
        """The names this file records, oldest first."""
        table = self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'migrations'")
        if table.fetchone() is None:
            return []
        rows = self.db.execute("SELECT name FROM migrations ORDER BY rowid")
        return [row[0] for row in rows]


def _recorded(db: sqlite3.Connection) -> set[str]:
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied REAL)")
    # A file written before names were recorded (or since by that older code) counts its
    # migrations in user_version; ``applied`` NULL says when is unknown.
    version = db.execute("PRAGMA user_version").fetchone()[0]
    db.executemany(
        "INSERT OR IGNORE INTO migrations VALUES (?, NULL)",
        [(name,) for name in LEGACY_MIGRATIONS[:version]],
    )
    return {row[0] for row in db.execute("SELECT name FROM migrations")}


def _sync_user_version(db: sqlite3.Connection, applied: set[str]) -> None:
    # Keep user_version meaning what the previous release reads it as, so a data folder
    # still opens with that release and it does not run a migration twice.
    version = 0
    for name in LEGACY_MIGRATIONS:
        if name not in applied:
            break
        version += 1
    db.execute(f"PRAGMA user_version = {version}")


def prefix_sql(column: str, prefix: str) -> tuple[str, list[object]]:
    """An SQL condition: ``column`` starts with ``prefix``, as a range an index on the column
    seeks to (UTF-8 keeps code point order, so every such text lies in [prefix, successor)),
    checked exactly by ``substr``."""
    condition = f"substr({column}, 1, ?) = ?"
    params: list[object] = [len(prefix), prefix]
    successor = prefix
    while successor and successor[-1] == "\U0010ffff":
        successor = successor[:-1]
    if successor:
        code = ord(successor[-1]) + 1
        code = 0xE000 if 0xD800 <= code <= 0xDFFF else code  # surrogates have no UTF-8
        successor = successor[:-1] + chr(code)
        condition = f"{column} >= ? AND {column} < ? AND {condition}"
        params = [prefix, successor, *params]
    return condition, params
