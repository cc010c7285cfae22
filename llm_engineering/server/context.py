"""``AppContext``: what the server's lifespan opens once and every tool reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llm_engineering.adapters.service import TrainingService
from llm_engineering.config import Settings
from llm_engineering.errors import UserError
from llm_engineering.generation.answer import Answerer
from llm_engineering.generation.models import GeneratorCache
from llm_engineering.index_store.background import IndexRunner
from llm_engineering.index_store.service import IndexService, IndexStatus

__all__ = ["AppContext"]


@dataclass
class AppContext:
    """The services one server process holds; tools reach them through ``app_of(ctx)``."""

    settings: Settings
    read_only: bool
    index: IndexService | None = None
    runner: IndexRunner | None = None
    index_error: str | None = None
    generators: GeneratorCache | None = None
    training: TrainingService | None = None
    training_error: str | None = None
    _answerer: Answerer | None = None

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
