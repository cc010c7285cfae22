"""Which embedding model and collection answer searches (``retrieval/live.json``).

Without the file, the configured ``embedding_model`` and ``collection``. Once a retrieval
tuning run switched to a tuned model, the file names it and its collection, and the index
it replaced (kept for a rollback). The record applies only while the configuration it was
made under stands: a user who sets another ``embedding_model`` or ``collection`` gets
exactly what they set, as before.

Tuned models live in ``retrieval/models/vN/`` (a sentence-transformers folder and its
``card.json``), numbered in the order they were trained.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llm_engineering.config import Settings
from llm_engineering.storage import write_whole

__all__ = ["EmbeddingIndex", "LiveFile", "LiveRecord", "live_index", "tuned_models"]


@dataclass(frozen=True)
class EmbeddingIndex:
    """One embedding model and the collection of its vectors."""

    model: str
    """Its name or folder, as the collection records it."""
    collection: str
    version: int | None = None
    """The tuned model's number (``retrieval/models/vN``); None for the configured model."""

    @property
    def label(self) -> str:
        return self.model if self.version is None else f"tuned v{self.version} ({self.model})"


@dataclass(frozen=True)
class LiveRecord:
    configured_model: str
    configured_collection: str
    live: EmbeddingIndex
    previous: EmbeddingIndex | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LiveRecord:
        previous = values.get("previous")
        return cls(
            str(values["configured_model"]),
            str(values["configured_collection"]),
            EmbeddingIndex(**values["live"]),
            EmbeddingIndex(**previous) if previous else None,
        )


class LiveFile:
    """``data_dir/retrieval/live.json``: read by every process that opens the index, written
    only by the index's writer."""

    def __init__(self, data_dir: Path):
        self.folder = data_dir / "retrieval"
        self.path = self.folder / "live.json"

    @property
    def models(self) -> Path:
        return self.folder / "models"

    def read(self) -> LiveRecord | None:
        try:
            return LiveRecord.from_dict(json.loads(self.path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None

    def write(self, record: LiveRecord) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_whole(self.path, json.dumps(record.to_dict(), indent=2))

    def stamp(self) -> tuple[int, int] | None:
        """Changes whenever the file does (a reader reopens the index then)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size


def configured_index(settings: Settings) -> EmbeddingIndex:
    return EmbeddingIndex(settings.embedding_model, settings.collection)


def live_index(settings: Settings, record: LiveRecord | None) -> EmbeddingIndex:
    """The index searches use: the record's, while the configuration it was made under holds."""
    if (
        record is None
        or settings.embedding_url
        or record.configured_model != settings.embedding_model
        or record.configured_collection != settings.collection
    ):
        return configured_index(settings)
    return record.live


def tuned_models(live: LiveFile) -> list[dict[str, Any]]:
    """Every tuned model's card, oldest first."""
    cards = []
    for card in sorted(live.models.glob("v*/card.json"), key=lambda p: int(p.parent.name[1:])):
        cards.append(json.loads(card.read_text(encoding="utf-8")))
    return cards
