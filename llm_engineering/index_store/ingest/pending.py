"""Parsed files waiting for their vectors, embedded in bounded steps and committed one by one.

Each :meth:`PendingFiles.step` embeds at most ``BATCH`` distinct texts, smallest files
first, and at most ``BIG_STEP`` of a file with more than ``BATCH`` chunks, and writes at
most ``RECORDS`` vectors, so a small file parsed while a 20 MB one is being embedded
waits one short step, not the whole file. Vectors go to Chroma as they are made (invisible: searches read chunks from
SQLite); a file's rows commit in SQLite, which is when it becomes searchable, as soon as
its last vector is in. A file dropped before that (deleted, or the run stopped) has its
uncommitted vectors deleted; a crash leaves them as orphans, which the start-up repair
deletes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from llm_engineering.errors import DiskFullError
from llm_engineering.index_store.ingest.report import IngestReport
from llm_engineering.index_store.models.remote_embeddings import embed_partly
from llm_engineering.index_store.store.ledger import ChunkRow, FileRow, Ledger
from llm_engineering.index_store.store.vectors import VectorIndex, VectorRecord

__all__ = ["BATCH", "BIG_STEP", "RECORDS", "ParsedFile", "PendingFiles"]

BATCH = 512
"""Most distinct texts in one embedding step: enough for well-packed length-sorted batches."""
BIG_STEP = 128
"""Most texts of one big file (more than BATCH chunks) in one step."""
RECORDS = 2048
"""Most vectors written to Chroma in one step (a file of one repeated paragraph has
20,000 chunks and five distinct texts)."""


@dataclass
class ParsedFile:
    row: FileRow
    is_new: bool
    chunks: list[ChunkRow]
    embed_texts: list[str]
    text: tuple[list[str], list[int] | None]
    since: float = field(default_factory=time.monotonic)
    """When it was parsed: a file waits at most ``flush_after`` seconds for company."""
    missing: list[int] = field(default_factory=list)
    """Positions of the chunks whose vectors are not in Chroma yet."""
    stored: list[str] = field(default_factory=list)
    """Ids of its vectors already written to Chroma, uncommitted."""

    def __post_init__(self) -> None:
        self.missing = list(range(len(self.chunks)))


class PendingFiles:
    """Parsed files in, committed files out.

    Args:
        ledger: The ledger rows commit to.
        vectors: The Chroma collection.
        embedder: Returns the embedding model.
        reusable: Text hash -> id of a vector this run forgot but has not deleted yet
            (a renamed file reuses it).
        flush_after: Seconds a parsed file waits before a step runs for it, with fewer
            than ``BATCH`` texts waiting.
        fail: Records a file as failed with an error (an embedding server that kept failing
            on some of its texts): the file's uncommitted vectors are deleted first.
    """

    def __init__(
        self,
        ledger: Ledger,
        vectors: VectorIndex,
        embedder: Callable[[], Any],
        reusable: dict[str, str],
        flush_after: float = 1.0,
        fail: Callable[[FileRow, str], None] | None = None,
    ):
        self._ledger = ledger
        self._vectors = vectors
        self._embedder = embedder
        self._reusable = reusable
        self.flush_after = flush_after
        self._fail = fail
        self.files: list[ParsedFile] = []
        # Vectors made for texts whose chunks are not all written yet.
        self._made: dict[str, Any] = {}

    def __bool__(self) -> bool:
        return bool(self.files)

    def paths(self) -> set[str]:
        return {parsed.row.path for parsed in self.files}

    def add(self, parsed: ParsedFile) -> None:
        self.files.append(parsed)

    def due_in(self, now: float, more_coming: bool) -> float | None:
        """Seconds until a step should run (0: now); None when nothing waits."""
        if not self.files:
            return None
        if not more_coming or sum(len(p.missing) for p in self.files) >= BATCH:
            return 0.0
        oldest = min(parsed.since for parsed in self.files)
        return max(0.0, oldest + self.flush_after - now)

    def drop(self, paths: Iterable[str]) -> list[str]:
        """Forget these files' uncommitted work; returns the paths that were waiting."""
        paths = set(paths)
        dropped = [parsed for parsed in self.files if parsed.row.path in paths]
        self.files = [parsed for parsed in self.files if parsed.row.path not in paths]
        for parsed in dropped:
            committed = set(self._ledger.chunk_ids(parsed.row.path))
            self._vectors.delete([i for i in parsed.stored if i not in committed])
        return [parsed.row.path for parsed in dropped]

    def drop_all(self) -> None:
        self.drop(self.paths())
        self._made = {}

    def step(self, report: IngestReport) -> list[ParsedFile]:
        """Embed one step's texts, write their vectors, commit the files that are complete.

        Returns:
            The files settled: committed, in the order they were parsed, after those failed
            because the embedding server left some of their texts without a vector.

        Raises:
            DiskFullError: no space left for the vectors or the rows; its ``paths`` are the
                files this step was writing.
        """
        writing = [parsed.row.path for parsed in self.files]
        try:
            return self._step(report)
        except DiskFullError as exc:
            exc.paths += writing
            raise

    def _step(self, report: IngestReport) -> list[ParsedFile]:
        text_of = self._texts_for_step()
        made, embedded, error = self._vectors_for(text_of)
        self._made.update(made)
        failed = self._fail_unembedded(text_of, error) if error is not None else []
        records: list[VectorRecord] = []
        for parsed in sorted(self.files, key=lambda p: len(p.missing)):
            left = []
            for position in parsed.missing:
                chunk = parsed.chunks[position]
                vector = self._made.get(chunk.text_hash)
                if vector is None or len(records) >= RECORDS:
                    left.append(position)
                    continue
                records.append(
                    VectorRecord(
                        chunk.id,
                        vector,
                        {"path": chunk.path, "file_type": parsed.row.file_type, "ordinal": chunk.ordinal},
                    )
                )  # fmt: skip
                parsed.stored.append(chunk.id)
            parsed.missing = left
        self._vectors.add(records)
        report.chunks_embedded += embedded
        report.chunks_written += len(records)
        report.chunks_reused += len(records) - embedded
        needed = {p.chunks[i].text_hash for p in self.files for i in p.missing}
        self._made = {digest: v for digest, v in self._made.items() if digest in needed}
        done = [parsed for parsed in self.files if not parsed.missing]
        self.files = [parsed for parsed in self.files if parsed.missing]
        stale = self._ledger.replace_files([(p.row, p.chunks, p.text) for p in done])
        for parsed in done:
            if parsed.is_new:
                report.added += 1
                report.added_paths.append(parsed.row.path)
            else:
                report.updated += 1
                report.updated_paths.append(parsed.row.path)
        self._vectors.delete(stale)
        return failed + done

    def _fail_unembedded(self, text_of: dict[str, str], error: str) -> list[ParsedFile]:
        """Fail, whole, each file with a text of this step left without a vector."""
        short = {digest for digest in text_of if digest not in self._made}
        failed = [
            parsed
            for parsed in self.files
            if any(parsed.chunks[i].text_hash in short for i in parsed.missing)
        ]
        self.drop(parsed.row.path for parsed in failed)
        for parsed in failed:
            if self._fail is not None:
                self._fail(parsed.row, error)
        return failed

    def _texts_for_step(self) -> dict[str, str]:
        """Text hash -> text of the step's distinct texts still without a vector: smallest
        files first."""
        text_of: dict[str, str] = {}
        limit = BATCH
        for parsed in sorted(self.files, key=lambda p: len(p.missing)):
            if len(parsed.missing) > BATCH:
                limit = min(limit, len(text_of) + BIG_STEP)
            for position in parsed.missing:
                if len(text_of) >= limit:
                    return text_of
                digest = parsed.chunks[position].text_hash
                if digest not in self._made:
                    text_of.setdefault(digest, parsed.embed_texts[position])
        return text_of

    def _vectors_for(self, text_of: dict[str, str]) -> tuple[dict[str, Any], int, str | None]:
        """A vector per text: one the index holds for equal text, else embedded now; how
        many were embedded; the embedding server's error when it left some without one."""
        if not text_of:
            return {}, 0, None
        embedder = self._embedder()
        self._vectors.ensure(
            embedder.name, embedder.dimension, getattr(embedder, "precision", None)
        )
        vectors: dict[str, Any] = {}
        existing = self._ledger.ids_with_text_hashes(text_of)
        for digest in text_of:
            if digest not in existing and digest in self._reusable:
                existing[digest] = self._reusable[digest]
        if existing:
            stored = self._vectors.embeddings(list(existing.values()))
            for digest, existing_id in existing.items():
                if existing_id in stored:
                    vectors[digest] = stored[existing_id]
        missing = [digest for digest in text_of if digest not in vectors]
        error = None
        if missing:
            embedded, error = embed_partly(embedder, [text_of[d] for d in missing])
            made = [(d, v) for d, v in zip(missing, embedded, strict=True) if v is not None]
            vectors.update(made)
            return vectors, len(made), error
        return vectors, 0, error
