"""What one ingest run did: counts, failures with their reasons, embedding work."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FailedFile", "IngestReport"]


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
