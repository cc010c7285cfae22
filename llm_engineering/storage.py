"""``state.sqlite``: one SQLite file the services keep their tables in.

This module holds what they share: the connection (one per thread, WAL mode), write
transactions, and the migration runner. Each owner registers its own named migrations
(``m001_create_tables``, as in simonw/llm) and applies them when it opens the file; the
``migrations`` table records each name once, so a migration runs once per file, whichever
process opens the file first. Names are unique across owners: number new ones after the
highest in the package.

Beside it, small JSON files (a job's records, the writer's progress) are replaced whole
with :func:`write_whole`.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

__all__ = ["LEGACY_MIGRATIONS", "Migration", "Migrations", "Storage", "run_script", "write_whole"]

T = TypeVar("T")
Migration = Callable[[sqlite3.Connection], None]

# Before migrations were recorded by name, ``PRAGMA user_version`` counted how many of these
# had run, in this order.
LEGACY_MIGRATIONS = ("m001_create_tables", "m002_keyword_vocabulary", "m003_jobs")

_NAME = re.compile(r"m\d{3}_\w+")


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


class Storage:
    """Thread-safe access to one SQLite file (one connection per thread, WAL mode)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection, in autocommit mode: reads need no transaction."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

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
