"""Ingestion: folders and files in, chunks and vectors out, keyed by content hash.

For each file: unchanged size and mtime skip it without reading; an unchanged sha256
skips it without parsing; otherwise it is parsed, chunked, and its chunks get
deterministic ids. Vectors are reused for any chunk text already in the index (an edit
re-embeds only what changed; a rename or copy embeds nothing), and the rest are
embedded in large batches. A file that disappeared loses its chunks.

Write order, for crash safety: new vectors go to Chroma first, then the file's rows
commit in SQLite (the moment the change becomes visible), then the old vectors are
deleted. A crash leaves at worst orphan vectors, which searches never show (results are
read from SQLite) and :meth:`Ingestor.repair` deletes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from llm_engineering.config import Settings
from llm_engineering.errors import DocumentError, PathError
from llm_engineering.index_store.chunking import Chunker
from llm_engineering.index_store.hashing import chunk_id, sha256_bytes, text_hash
from llm_engineering.index_store.ledger import ChunkRow, FileRow, Ledger
from llm_engineering.index_store.readers import document_units, file_type_of, read_document
from llm_engineering.index_store.remote_embeddings import embed_partly
from llm_engineering.index_store.report import FailedFile, IngestReport
from llm_engineering.index_store.scanning import (
    ScannedFile,
    is_supported,
    leads_out,
    scan_file,
    scan_folder,
)
from llm_engineering.index_store.vectors import VectorIndex, VectorRecord

__all__ = ["FailedFile", "GoneFn", "IngestReport", "Ingestor", "ProgressFn"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, str], None]
"""progress(done, total, message)."""

GoneFn = Callable[[], Sequence[Path]]
"""Paths found deleted while a run is under way; asked between two files and forgotten at once."""

# Chunks gathered before one embedding call: large enough for length-sorted batches.
_EMBED_BATCH = 512


class EmbedderLike(Protocol):
    name: str
    dimension: int

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...


@dataclass
class _Prepared:
    row: FileRow
    is_new: bool
    chunks: list[ChunkRow]
    embed_texts: list[str]
    text: tuple[list[str], list[int] | None]


class Ingestor:
    """Brings the index in step with files on disk. Not re-entrant: one ingest at a time.

    Args:
        settings: Chunk sizes, size limit, watched folders.
        state: The ledger of files and chunks.
        vectors: The Chroma collection.
        embedder: Returns the (lazily loaded) embedding model.
        chunker: Returns the chunker (it needs the model's tokenizer).
    """

    def __init__(
        self,
        settings: Settings,
        state: Ledger,
        vectors: VectorIndex,
        embedder: Callable[[], EmbedderLike],
        chunker: Callable[[], Chunker],
    ):
        self._settings = settings
        self._state = state
        self._vectors = vectors
        self._embedder = embedder
        self._chunker = chunker
        # Text hash -> id of a vector whose chunk row this run removed and whose deletion
        # waits for the run's end, so a renamed file reuses it (deletions go first).
        self._reusable: dict[str, str] = {}
        self._deferred: list[str] = []

    # -- public ------------------------------------------------------------------------

    def ingest(
        self,
        targets: Sequence[Path],
        progress: ProgressFn | None = None,
        stop: threading.Event | None = None,
        gone: GoneFn | None = None,
    ) -> IngestReport:
        """Index files and folders; forget files that vanished from the given folders.

        ``stop`` ends the run early (between two files), keeping what was done. ``gone``
        is asked between two files for paths deleted meanwhile, which are forgotten then.

        Raises:
            PathError: a target does not exist, or is a file of an unsupported type.
        """
        return self._run(targets, progress, stop, gone, strict=True)

    def sync(
        self,
        paths: Iterable[Path],
        progress: ProgressFn | None = None,
        stop: threading.Event | None = None,
        gone: GoneFn | None = None,
    ) -> IngestReport:
        """Bring these paths in step with the disk, whatever happened to them.

        A file or folder that exists is indexed (a folder is rescanned); one that is gone is
        forgotten together with everything that was under it; unsupported files are skipped.
        This is what the folder watcher calls with the paths it saw change.
        """
        return self._run(list(paths), progress, stop, gone, strict=False)

    def _run(
        self,
        targets: Sequence[Path],
        progress: ProgressFn | None,
        stop: threading.Event | None,
        gone_now: GoneFn | None,
        strict: bool,
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        plan: list[tuple[ScannedFile, Path]] = []
        gone: list[str] = []
        for target in targets:
            target = target.expanduser().absolute()
            if not target.exists() and not target.is_symlink():
                if strict:
                    raise PathError(f"cannot ingest {target}: no such file or folder")
                gone += self._known_at(target)
            elif target.is_dir():
                target = target.resolve()
                seen = set()
                roots = self._roots(target)
                for scanned in scan_folder(target, exclude=self._settings.data_dir, roots=roots):
                    plan.append((scanned, self._root_for(scanned.path, target)))
                    seen.add(str(scanned.path))
                gone += [path for path in self._state.files_under(str(target)) if path not in seen]
            elif target.is_file() or target.is_symlink():
                if not is_supported(target):
                    if strict:
                        raise PathError(
                            f"cannot ingest {target}: '.{file_type_of(target)}' files are not supported "
                            f"(see `llm-eng status` for the supported types)"
                        )
                    continue
                scanned = scan_file(target, self._roots(target.parent))
                plan.append((scanned, self._root_for(target, target.parent)))
            elif strict:
                raise PathError(f"cannot ingest {target}: not a regular file or folder")
        # A folder and a file inside it may both be named (the watcher does that): once each.
        unique = {str(scanned.path): (scanned, root) for scanned, root in reversed(plan)}
        plan = [unique[key] for key in dict.fromkeys(str(scanned.path) for scanned, _ in plan)]
        # Deletions first, so a deleted file leaves searches before a long run of additions;
        # their vectors stay until the end, so a renamed or moved file reuses them.
        try:
            self._forget(sorted(set(gone)), report)
            report.merge(self._process(plan, progress, stop, gone_now))
        finally:
            self._vectors.delete(self._deferred)
            self._reusable, self._deferred = {}, []
        report.seconds = time.perf_counter() - started
        return report

    def remove(self, paths: Iterable[Path]) -> int:
        """Forget these files (deleted on disk). Returns how many were known."""
        known = [str(p) for p in paths if self._state.file(str(p)) is not None]
        return self._remove(known)

    def repair(self) -> tuple[int, int]:
        """Make Chroma agree with SQLite after a crash.

        Returns:
            (orphan vectors deleted, files whose vectors were missing and were forgotten so the
            next scan indexes them again).
        """
        in_chroma = self._vectors.all_ids()
        in_sqlite = self._state.all_chunk_ids()
        orphans = sorted(in_chroma - in_sqlite)
        self._vectors.delete(orphans)
        missing = in_sqlite - in_chroma
        broken: set[str] = set()
        if missing:
            for chunk in self._state.chunks_by_ids(sorted(missing)).values():
                broken.add(chunk["path"])
            self._state.remove_files(broken)
        return len(orphans), len(broken)

    # -- internals ---------------------------------------------------------------------

    def _roots(self, folder: Path) -> list[Path]:
        """Where links may lead from files found under ``folder``: the watched folders and it."""
        return [*self._settings.watch, folder]

    def _root_for(self, path: Path, default: Path) -> Path:
        for folder in self._settings.watch:
            if path == folder or folder in path.parents:
                return folder
        return default

    def _remove(self, paths: list[str]) -> int:
        removed_ids = self._state.remove_files(paths)
        self._vectors.delete(removed_ids)
        return len(paths)

    def _known_at(self, target: Path) -> list[str]:
        """The indexed files at ``target`` (a file) or under it (a folder)."""
        key = str(target)
        return [*self._state.files_under(key), *([key] if self._state.file(key) else [])]

    def _forget(self, paths: list[str], report: IngestReport) -> None:
        """Forget files now; their vectors wait for the end of the run (see ``_reusable``)."""
        if paths:
            self._deferred += self._state.remove_files(paths, self._reusable)
            report.removed += len(paths)
            report.removed_paths += paths

    def _process(
        self,
        plan: list[tuple[ScannedFile, Path]],
        progress: ProgressFn | None,
        stop: threading.Event | None,
        gone_now: GoneFn | None = None,
    ) -> IngestReport:
        report = IngestReport()
        known: dict[str, FileRow] = {}
        for root in {root for _, root in plan}:
            known.update(self._state.files_under(str(root)))
        pending: list[_Prepared] = []
        pending_chunks = 0
        total = len(plan)
        if progress is not None:
            progress(0, total, "")
        for done, (scanned, root) in enumerate(plan, start=1):
            if stop is not None and stop.is_set():
                break
            deleted = gone_now() if gone_now is not None else ()
            if deleted:
                forget = {p for path in deleted for p in self._known_at(path)}
                pending = [p for p in pending if p.row.path not in forget]
                pending_chunks = sum(len(p.chunks) for p in pending)
                self._forget(sorted(forget), report)
            key = str(scanned.path)
            old = known.get(key) or self._state.file(key)
            prepared = self._prepare(scanned, root, old, report)
            if prepared is not None:
                pending.append(prepared)
                pending_chunks += len(prepared.chunks)
                if pending_chunks >= _EMBED_BATCH:
                    self._flush(pending, report)
                    pending, pending_chunks = [], 0
            if progress is not None:
                progress(done, total, key)
        self._flush(pending, report)
        return report

    def _prepare(
        self, scanned: ScannedFile, root: Path, old: FileRow | None, report: IngestReport
    ) -> _Prepared | None:
        path = str(scanned.path)
        rel = (
            str(scanned.path.relative_to(root))
            if root in scanned.path.parents
            else scanned.path.name
        )
        row = FileRow(
            path,
            str(root),
            rel,
            file_type_of(scanned.path),
            scanned.size,
            scanned.mtime_ns,
            None,
            "indexed",
        )
        if (
            old is not None
            and old.status == "indexed"
            and old.size == scanned.size
            and old.mtime_ns == scanned.mtime_ns
            and scanned.problem is None
        ):
            report.unchanged += 1
            return None
        try:
            if scanned.problem is not None:
                raise DocumentError(scanned.problem)
            # Again just before reading: the link may have been changed since the scan.
            outside = leads_out(scanned.path, self._roots(root))
            if outside is not None:
                raise DocumentError(outside)
            if scanned.size > self._settings.max_file_bytes:
                raise DocumentError(
                    f"file is {scanned.size / 1048576:.1f} MiB, over the {self._settings.max_file_size_mb:g} MiB "
                    "limit (max_file_size_mb)"
                )
            try:
                data = scanned.path.read_bytes()
            except FileNotFoundError:  # deleted since the scan: nothing to index or keep
                self._forget([path] if self._state.file(path) else [], report)
                return None
            except OSError as exc:
                raise DocumentError(f"cannot read file: {exc.strerror or exc}") from exc
            row.sha256 = sha256_bytes(data)
            row.size = len(data)
            if old is not None and old.status == "indexed" and old.sha256 == row.sha256:
                self._state.touch(path, scanned.size, scanned.mtime_ns)
                report.unchanged += 1
                return None
            doc = read_document(
                scanned.path, data, max_unpacked_bytes=self._settings.max_unpacked_bytes
            )
            chunks = self._chunker().chunk(doc)
        except DocumentError as exc:
            self._fail(row, str(exc), report)
            return None
        except Exception as exc:  # a reader bug must not stop the other files
            log.exception("unexpected error reading %s", path)
            self._fail(row, f"unexpected error: {type(exc).__name__}: {exc}", report)
            return None
        row.title = doc.title
        rows: list[ChunkRow] = []
        texts: list[str] = []
        for chunk in chunks:
            embed_text = chunk.embedding_text()
            digest = text_hash(embed_text)
            rows.append(
                ChunkRow(
                    chunk_id(path, chunk.ordinal, digest), path, chunk.ordinal, digest, chunk.text,
                    chunk.heading, chunk.page, chunk.start_line, chunk.end_line,
                )
            )  # fmt: skip
            texts.append(embed_text)
        return _Prepared(
            row, old is None or old.status != "indexed", rows, texts, document_units(doc)
        )

    def _fail(self, row: FileRow, error: str, report: IngestReport) -> None:
        row.status, row.error = "failed", error
        stale = self._state.replace_file(row, [])
        self._vectors.delete(stale)
        report.failed.append(FailedFile(row.path, error))
        log.warning("could not index %s: %s", row.path, error)

    def _fail_unembedded(
        self,
        batch: list[_Prepared],
        vectors: dict[str, list[float]],
        error: str,
        report: IngestReport,
    ) -> list[_Prepared]:
        """Fail each file with a chunk left without a vector (nothing half-written); the rest."""
        kept = []
        for prepared in batch:
            if all(chunk.text_hash in vectors for chunk in prepared.chunks):
                kept.append(prepared)
            else:
                self._fail(prepared.row, error, report)
        return kept

    def _flush(self, batch: list[_Prepared], report: IngestReport) -> None:
        if not batch:
            return
        embedder = self._embedder()
        self._vectors.ensure(embedder.name, embedder.dimension)
        # One vector per distinct text: reuse what the index has, embed the rest once.
        text_of: dict[str, str] = {}
        for prepared in batch:
            for chunk, text in zip(prepared.chunks, prepared.embed_texts, strict=True):
                text_of.setdefault(chunk.text_hash, text)
        vectors: dict[str, list[float]] = {}
        existing = self._state.ids_with_text_hashes(text_of)
        for digest in text_of:
            if digest not in existing and digest in self._reusable:
                existing[digest] = self._reusable[digest]
        if existing:
            stored = self._vectors.embeddings(list(existing.values()))
            for digest, existing_id in existing.items():
                if existing_id in stored:
                    vectors[digest] = stored[existing_id]
        missing = [digest for digest in text_of if digest not in vectors]
        if missing:
            embedded, error = embed_partly(embedder, [text_of[d] for d in missing])
            vectors.update((d, v) for d, v in zip(missing, embedded, strict=True) if v is not None)
            if error is not None:  # an embedding server failed: so do the files it left short
                batch = self._fail_unembedded(batch, vectors, error, report)
            missing = [digest for digest in missing if digest in vectors]
        report.chunks_embedded += len(missing)

        records = [
            VectorRecord(
                chunk.id,
                vectors[chunk.text_hash],
                chunk.text,
                {"path": chunk.path, "file_type": prepared.row.file_type, "ordinal": chunk.ordinal},
            )
            for prepared in batch
            for chunk in prepared.chunks
        ]
        self._vectors.add(records)
        total_chunks = len(records)
        report.chunks_written += total_chunks
        report.chunks_reused += total_chunks - len(missing)
        stale: list[str] = []
        for prepared in batch:
            stale += self._state.replace_file(prepared.row, prepared.chunks, prepared.text)
            if prepared.is_new:
                report.added += 1
                report.added_paths.append(prepared.row.path)
            else:
                report.updated += 1
                report.updated_paths.append(prepared.row.path)
        self._vectors.delete(stale)
