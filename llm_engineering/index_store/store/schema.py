"""The ledger's tables in ``state.sqlite``, as named migrations (the job store registers its own).

``files`` (one row per file seen, indexed or failed), ``chunks`` (one row per chunk, under the
id its vector has in Chroma), ``chunks_fts`` (FTS5, BM25 with Porter stemming, kept in step by
triggers), ``chunks_vocab`` (its document frequencies), ``document_text`` (the text each
file was indexed from, which ``get_document`` reads) and ``tallies`` (chunks, and files by
status, counted by triggers).
"""

from __future__ import annotations

import sqlite3

from llm_engineering.storage import Migrations, run_script

__all__ = ["MIGRATIONS"]

MIGRATIONS = Migrations()
"""The ledger's tables; the job store registers its own."""


@MIGRATIONS.register
def m001_create_tables(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE files (
            path TEXT PRIMARY KEY,
            root TEXT NOT NULL,
            rel_path TEXT NOT NULL,
            file_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT,
            status TEXT NOT NULL CHECK (status IN ('indexed', 'failed')),
            error TEXT,
            title TEXT,
            chunk_count INTEGER NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL
        );
        CREATE INDEX files_root ON files(root);
        CREATE TABLE chunks (
            id TEXT NOT NULL UNIQUE,
            path TEXT NOT NULL,
            ordinal INTEGER NOT NULL,
            text_hash TEXT NOT NULL,
            text TEXT NOT NULL,
            heading TEXT NOT NULL DEFAULT '',
            page INTEGER,
            start_line INTEGER,
            end_line INTEGER
        );
        CREATE INDEX chunks_path ON chunks(path);
        CREATE INDEX chunks_text_hash ON chunks(text_hash);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            heading, text, content='chunks', content_rowid='rowid',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, heading, text) VALUES (new.rowid, new.heading, new.text);
        END;
        CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, heading, text)
            VALUES ('delete', old.rowid, old.heading, old.text);
        END;
        """,
    )


@MIGRATIONS.register
def m002_keyword_vocabulary(db: sqlite3.Connection) -> None:
    # Document frequency per (stemmed) term, read straight from the FTS5 index: the IDF the
    # offline reranker uses for passages the keyword retriever did not score.
    db.execute("CREATE VIRTUAL TABLE chunks_vocab USING fts5vocab(chunks_fts, 'row')")


@MIGRATIONS.register
def m004_document_text(db: sqlite3.Connection) -> None:
    # The text each file was indexed from (``get_document`` reads it): its units are the
    # pages of a PDF, else one text whose lines are the lines chunks cite.
    db.execute(
        "CREATE TABLE document_text (path TEXT PRIMARY KEY, units TEXT NOT NULL, pages TEXT)"
    )


@MIGRATIONS.register
def m005_tallies(db: sqlite3.Connection) -> None:
    # Counts kept by triggers, so a status, a listing's totals or BM25's document count is a
    # row read, not a scan of a million chunks. Files are written by upsert (ON CONFLICT DO
    # UPDATE), which fires the update trigger; INSERT OR REPLACE would delete without it.
    run_script(
        db,
        """
        CREATE TABLE tallies (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO tallies VALUES ('chunks', (SELECT count(*) FROM chunks));
        INSERT INTO tallies VALUES
            ('files:indexed', (SELECT count(*) FROM files WHERE status = 'indexed'));
        INSERT INTO tallies VALUES
            ('files:failed', (SELECT count(*) FROM files WHERE status = 'failed'));
        CREATE TRIGGER chunks_tally_ai AFTER INSERT ON chunks BEGIN
            UPDATE tallies SET n = n + 1 WHERE name = 'chunks';
        END;
        CREATE TRIGGER chunks_tally_ad AFTER DELETE ON chunks BEGIN
            UPDATE tallies SET n = n - 1 WHERE name = 'chunks';
        END;
        CREATE TRIGGER files_tally_ai AFTER INSERT ON files BEGIN
            UPDATE tallies SET n = n + 1 WHERE name = 'files:' || new.status;
        END;
        CREATE TRIGGER files_tally_ad AFTER DELETE ON files BEGIN
            UPDATE tallies SET n = n - 1 WHERE name = 'files:' || old.status;
        END;
        CREATE TRIGGER files_tally_au AFTER UPDATE OF status ON files
        WHEN old.status != new.status BEGIN
            UPDATE tallies SET n = n - 1 WHERE name = 'files:' || old.status;
            UPDATE tallies SET n = n + 1 WHERE name = 'files:' || new.status;
        END;
        CREATE INDEX files_modified ON files(mtime_ns DESC, path);
        CREATE INDEX files_rel_path ON files(rel_path);
        """,
    )


@MIGRATIONS.register
def m006_status_indexes(db: sqlite3.Connection) -> None:
    # What every status and the dashboard's overview read: the failed files (a few, found
    # without a scan of all of them) and the files indexed last.
    run_script(
        db,
        """
        CREATE INDEX files_failed ON files(path) WHERE status = 'failed';
        CREATE INDEX files_recent ON files(updated_at) WHERE status = 'indexed';
        """,
    )
