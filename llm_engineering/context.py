"""``AppContext``: the services one process holds, opened once and closed once.

The MCP server's lifespan, ``llm-eng dashboard`` and the tests open them the same way,
:meth:`AppContext.open` with a role, then :meth:`AppContext.start` the background work the
role does, and :meth:`AppContext.close`; tools and dashboard pages read them from it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from llm_engineering.adapters.service import TrainingService
from llm_engineering.config import Settings
from llm_engineering.errors import LlmEngError, UserError
from llm_engineering.generation.answer import Answerer
from llm_engineering.generation.models import GeneratorCache
from llm_engineering.index_store.background import IndexRunner
from llm_engineering.index_store.service import IndexService, IndexStatus

if TYPE_CHECKING:
    from llm_engineering.adapters.retrieval_jobs import RetrievalJobs

__all__ = ["AppContext", "Role"]

log = logging.getLogger(__name__)

Role = Literal["server", "read-only", "reader"]
"""``server``: indexes and watches the folders (when it gets the writer lock, else it reads
and takes over), runs training jobs. ``read-only``: serves reads, writes nothing, runs no
jobs. ``reader``: opens the data folder to read (no indexer, no job runner), as ``llm-eng
dashboard`` beside a server; it may still queue jobs for that server."""


@dataclass
class AppContext:
    """The services one process holds; tools reach them through ``app_of(ctx)``, dashboard
    pages through their :class:`~llm_engineering.dashboard.app.Dashboard`."""

    settings: Settings
    read_only: bool
    role: Role = "server"
    watch: bool = True
    """With ``role`` server or read-only: watch the folders after reconciling them."""
    index: IndexService | None = None
    runner: IndexRunner | None = None
    index_error: str | None = None
    generators: GeneratorCache | None = None
    training: TrainingService | None = None
    training_error: str | None = None
    tuning: RetrievalJobs | None = None
    """Runs retrieval tuning jobs while this process writes the index."""
    _answerer: Answerer | None = None

    @classmethod
    def open(cls, settings: Settings, role: Role = "server", *, watch: bool = True) -> AppContext:
        """Open the services over ``settings.data_dir`` (blocking: seconds at most; models load
        later, on first need). What cannot be opened is recorded (``index_error``,
        ``training_error``) for the tools to say, never raised: the process stays up."""
        app = cls(settings=settings, read_only=role == "read-only", role=role, watch=watch)
        try:
            app.index = IndexService(settings)
        except LlmEngError as exc:
            app.index_error = str(exc)
            log.error("cannot open the index: %s", exc)
        try:
            app.training = TrainingService(settings)
        except LlmEngError as exc:  # its jobs table lives in state.sqlite too (damaged?)
            app.training_error = str(exc)
            log.error("training is not available: %s", exc)
        return app

    def start(self) -> None:
        """Start the role's background work: the indexer and watcher, the job runner."""
        if self.role == "reader":
            return
        if self.index is not None:
            self.runner = IndexRunner(
                self.index,
                self.settings.watch,
                read_only=self.read_only,
                watch=self.watch,
                debounce=self.settings.watch_debounce,
            )
            self.runner.start()
        if self.training is not None and not self.read_only:
            # Runs queued jobs whenever this copy holds jobs.lock; resumes ones a restart stopped.
            self.training.start_runner()
            if self.runner is not None and self.index is not None:
                self.tuning = self.training.tuning_runner(self.index, self.runner.reconciled.is_set)
                self.tuning.start()

    def close(self) -> None:
        """Stop the background work and close the services (blocking, seconds at most)."""
        if self.tuning is not None:
            self.tuning.stop()
        if self.training is not None:
            self.training.close()
        if self.runner is not None:
            self.runner.stop()
        if self.generators is not None:
            self.generators.close()
        if self.index is not None:
            self.index.close()

    def require_index(self) -> IndexService:
        """The index, or a UserError saying why it is not available."""
        if self.index is None:
            raise UserError(f"the index is not available: {self.index_error or 'still opening'}")
        return self.index

    def require_writable_index(self) -> IndexService:
        if self.read_only:
            raise UserError(
                "this server was started read-only (--read-only); it does not write to the index"
            )
        return self.require_index()

    def require_training(self) -> TrainingService:
        if self.training is None:
            raise UserError(
                f"training is not available in this server: {self.training_error or 'not started'}"
            )
        return self.training

    def require_generators(self) -> GeneratorCache:
        """The generator and its adapters (nothing loads until the first answer)."""
        self.generators = self.generators or GeneratorCache(self.settings)
        return self.generators

    def require_answerer(self, needs_index: bool = True) -> Answerer:
        """The answer service (its model loads on the first question)."""
        index = self.require_index() if needs_index else self.index
        if self._answerer is None:
            self._answerer = Answerer.from_settings(
                self.settings,
                self.require_generators(),
                index,
                adapters=self.training.resolve_adapter if self.training else None,
            )
        return self._answerer

    def queued_paths(self) -> list[Path]:
        """Paths the watcher has seen change and that wait to be indexed."""
        return self.runner.queued() if self.runner is not None else []

    def status(self) -> IndexStatus:
        """The index's status, with the background indexer's part when one runs."""
        if self.runner is not None:
            return self.runner.status()
        return self.require_index().status()
