"""What one ingest run did (counts, failures with their reasons, embedding work), and what
the index holds (``IndexStatus``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FailedFile", "IndexStatus", "IngestReport", "Role"]


@dataclass
class FailedFile:
    path: str
    error: str


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[FailedFile] = field(default_factory=list)
    chunks_embedded: int = 0
    """Chunk texts that went through the embedding model."""
    chunks_reused: int = 0
    """Chunks whose vector was already in the index (same text elsewhere or before)."""
    chunks_written: int = 0
    seconds: float = 0.0
    added_paths: list[str] = field(default_factory=list)
    updated_paths: list[str] = field(default_factory=list)
    """Files indexed again because their content changed."""
    removed_paths: list[str] = field(default_factory=list)

    def merge(self, other: IngestReport) -> None:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.removed += other.removed
        self.failed += other.failed
        self.chunks_embedded += other.chunks_embedded
        self.chunks_reused += other.chunks_reused
        self.chunks_written += other.chunks_written
        self.added_paths += other.added_paths
        self.updated_paths += other.updated_paths
        self.removed_paths += other.removed_paths


Role = Literal["writer", "reader", "read-only"]


@dataclass
class IndexStatus:
    """What is indexed and who keeps it so: everything ``index_status`` and ``llm-eng status`` show.

    ``role``: ``writer`` (this process indexes), ``reader`` (another process, ``writer_pid``,
    does; this one takes over when it exits) or ``read-only`` (asked never to write).
    """

    documents: int
    chunks: int
    pending: int
    indexing: str | None
    failed: list[FailedFile]
    watched: list[str]
    data_dir: str
    vector_store: str
    embedding_model: str
    embedding_dimension: int | None
    embedding_loaded: bool
    embeddings: str = ""
    """Where documents and queries are embedded: ``in process (cpu)``, ``server URL``."""
    reranking: str = ""
    """Where reranking runs, and with what."""
    last_ingest: IngestReport | None = None
    role: Role = "writer"
    writer_pid: int | None = None
    watching: bool = False
    watch_problems: list[str] = field(default_factory=list)
    """Why a watched folder (or a subfolder) is not watched now; each is retried."""
    error: str | None = None
    building: bool = False
    """An ingest run is under way in the writing process (the start-up reconcile, changes
    being indexed): searches answer from what is committed so far."""
    extra: dict[str, Any] = field(default_factory=dict)

    def under_way(self) -> str | None:
        """While indexing is under way, how far it is: a sentence to show beside results,
        which may then be incomplete. None when nothing is being indexed."""
        if not (self.building or self.pending):
            return None
        if not self.pending:
            return "indexing is under way: the watched folders are being scanned"
        done = self.documents + len(self.failed)
        return f"indexing is under way: {done:,} of {done + self.pending:,} files done"
