"""What the index holds and who keeps it so (``IndexStatus``): everything ``index_status``,
``llm-eng status`` and the dashboard's overview show."""

from __future__ import annotations

from dataclasses import astuple, dataclass, field
from typing import Any, Literal

from llm_engineering.index_store.ingest.report import FailedFile, IngestReport

__all__ = ["IndexStatus", "Role", "status_of"]


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


def status_of(index: Any) -> IndexStatus:
    """What ``index`` (an :class:`~.service.IndexService`, which imports this module) holds and
    who keeps it so; a reader shows the writer's published run."""
    counts = index.ledger.counts()
    failed = [FailedFile(row.path, row.error or "") for row in index.ledger.failed_files()]
    failed += index.run.stalled
    _, dim = index.vectors.recorded_model
    run = index.run
    pending, indexing, paused, building = run.pending, run.current, run.paused, run.building
    if not index.is_writer:  # the live writing process's run, as it published it
        live = index.writer_pid if index.lock.taken() else None
        pending, indexing, paused, building = astuple(index.progress_file.read(live))
    embeddings, reranking = index.models.where()
    return IndexStatus(
        documents=counts["documents"],
        chunks=counts["chunks"],
        pending=pending,
        indexing=indexing,
        failed=failed,
        watched=[str(p) for p in index.settings.watch],
        data_dir=str(index.settings.data_dir),
        vector_store=(
            f"chroma server {index.settings.chroma_url}"
            if index.settings.chroma_url
            else f"embedded chroma {index.settings.chroma_dir}"
        ),
        embedding_model=index.live.label,
        embedding_dimension=getattr(index.models.loaded_embedder, "dimension", None) or dim,
        embedding_loaded=index.embedder_loaded,
        embeddings=embeddings,
        reranking=reranking,
        last_ingest=index.last_report,
        role="writer" if index.is_writer else "reader",
        writer_pid=index.writer_pid,
        error=paused,
        building=building,
    )
