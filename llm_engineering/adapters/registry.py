"""The adapter registry: ``adapters/NAME/VERSION/`` with ``peft/``, ``adapter.gguf`` and ``card.json``.

Versions are integers, monotonic per name (a deleted version's number is never reused).
A card records what an adapter is and where it came from: the base model and the sha256
of the GGUF it serves on, the dataset's sha256 and counts, the resolved
hyperparameters, final and best loss, library versions, creation time and parent job.

A card that cannot be read is listed apart as damaged (:class:`RegistryScan`), with its
path and why, and refused by name with the same; every other version lists and serves.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_engineering.adapters.damaged import UNREADABLE, Damaged, damaged
from llm_engineering.errors import UserError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

__all__ = ["CARD", "AdapterCard", "AdapterRegistry", "RegistryScan", "parse_spec", "valid_name"]

log = logging.getLogger(__name__)

# fullmatch, never match with ^...$: "$" lets a final newline through ("ok\n").
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DIGITS = re.compile(r"[0-9]+")

CARD = "card.json"
_PEFT = "peft"
_GGUF = "adapter.gguf"


def valid_name(name: str) -> str:
    """Adapter names become folder names: letters, digits, '.', '_' and '-'."""
    if not _NAME.fullmatch(name or "") or name in (".", ".."):
        raise UserError(
            f"adapter name {name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def parse_spec(spec: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@VERSION`` (``@3`` or ``@v3``)."""
    name, _, version = spec.partition("@")
    valid_name(name)
    if not version:
        return name, None
    digits = version[1:] if version[:1] in ("v", "V") else version
    if not _DIGITS.fullmatch(digits):
        raise UserError(f"adapter version in {spec!r} must be a number, like {name}@2")
    return name, int(digits)


@dataclass
class AdapterCard:
    name: str
    version: int
    base_model: str
    base_gguf: str
    base_gguf_sha256: str
    dataset_sha256: str
    dataset_examples: int
    dataset_formats: dict[str, int]
    hyperparameters: dict[str, Any]
    final_loss: float | None
    best_loss: float | None
    steps: int
    train_tokens: int
    job_id: str
    created: float = field(default_factory=time.time)
    libraries: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    system_prompt: str | None = None
    """The system message it was trained with (None: none); answers without passages use it."""

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def peft(self) -> Path:
        """Its peft folder (what vLLM and transformers load)."""
        return Path(self.path) / _PEFT

    @property
    def gguf(self) -> Path:
        """Its GGUF export (what llama.cpp loads; absent when the base was not a GGUF)."""
        return Path(self.path) / _GGUF


@dataclass
class RegistryScan:
    """The versions whose cards read, and those whose cards do not."""

    cards: list[AdapterCard]
    damaged: list[Damaged]


@functools.cache
def _card_type() -> TypeAdapter[AdapterCard]:
    from pydantic import TypeAdapter

    return TypeAdapter(AdapterCard)


class _DamagedCard(Exception):
    def __init__(self, found: Damaged):
        super().__init__(found.describe())
        self.found = found


class AdapterRegistry:
    def __init__(self, root: Path):
        self.root = root

    def _folder(self, name: str) -> Path:
        return self.root / valid_name(name)

    def versions(self, name: str) -> list[int]:
        folder = self._folder(name)
        if not folder.is_dir():
            return []
        return sorted(
            int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / CARD).is_file()
        )

    def next_version(self, name: str) -> int:
        folder = self._folder(name)
        counter = folder / ".last_version"
        last = 0
        if counter.is_file():
            text = counter.read_text(errors="replace").strip()
            if text.isdigit():
                last = int(text)
            else:  # the versions on disk still keep numbers from being reused
                log.warning("%s does not hold a version number (%r); ignored", counter, text[:40])
        return max([last, *self.versions(name)]) + 1

    def add(self, card: AdapterCard, peft_dir: Path, gguf_path: Path | None) -> AdapterCard:
        """Move a trained adapter in as the next version of ``card.name``."""
        folder = self._folder(card.name)
        folder.mkdir(parents=True, exist_ok=True)
        card.version = self.next_version(card.name)
        target = folder / str(card.version)
        staging = folder / f".incoming-{card.version}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        shutil.copytree(peft_dir, staging / _PEFT)
        if gguf_path is not None:
            shutil.copy2(gguf_path, staging / _GGUF)
        card.path = str(target)
        (staging / CARD).write_text(json.dumps(asdict(card), indent=2, sort_keys=True))
        staging.rename(target)  # the version appears whole or not at all
        (folder / ".last_version").write_text(str(card.version))
        return card

    def get(self, spec: str) -> AdapterCard:
        """The card for ``NAME`` (latest version) or ``NAME@VERSION``.

        Raises:
            UserError: no such adapter or version, or its card cannot be read (the message
                names the file and why).
        """
        name, version = parse_spec(spec)
        versions = self.versions(name)
        if not versions:
            known = (
                ", ".join(c.spec for c in self.cards())
                or "none yet (train one with start_qlora_job)"
            )
            raise UserError(f"unknown adapter {name!r}; registered: {known}")
        if version is None:
            version = versions[-1]
        elif version not in versions:
            raise UserError(
                f"adapter {name!r} has no version {version}; versions: {', '.join(map(str, versions))}"
            )
        try:
            return self._read(self._folder(name), version)
        except _DamagedCard as exc:
            # Never an older version in its place: the caller asked for this one.
            spec = f"{name}@{version}"
            raise UserError(
                f"adapter {exc.found.describe()}; delete it (delete_adapter {spec}, or "
                f"llm-eng adapters --delete {spec}) or restore the file"
            ) from None

    def cards(self) -> list[AdapterCard]:
        """Every version whose card reads (see :meth:`scan` for those that do not)."""
        return self.scan().cards

    def scan(self, name: str | None = None) -> RegistryScan:
        """Every version (of ``name`` only, when given), damaged cards apart; only the cards
        of ``name`` are read then."""
        found = RegistryScan([], [])
        if not self.root.is_dir():
            return found
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir() or not _NAME.fullmatch(folder.name):
                continue
            if name is not None and folder.name != name:
                continue
            for version in self.versions(folder.name):
                try:
                    found.cards.append(self._read(folder, version))
                except _DamagedCard as exc:
                    found.damaged.append(exc.found)
        return found

    @staticmethod
    def _read(folder: Path, version: int) -> AdapterCard:
        path = folder / str(version) / CARD
        try:
            card = _card_type().validate_python(json.loads(path.read_text(encoding="utf-8")))
        except UNREADABLE as exc:
            raise _DamagedCard(damaged(f"{folder.name}@{version}", path, exc)) from exc
        # What it is and where it is now come from its folder: a data folder that was moved
        # or copied serves its own files, under the version it is listed as.
        card.name, card.version, card.path = folder.name, version, str(path.parent)
        return card

    def delete(self, spec: str, confirm: str) -> list[str]:
        """Delete ``NAME@VERSION``, or every version of ``NAME``; ``confirm`` must repeat ``spec``.

        Returns:
            The specs deleted.
        """
        if confirm != spec:
            raise UserError(
                f"to delete {spec!r}, pass confirm={spec!r} (deleting cannot be undone)"
            )
        name, _ = parse_spec(spec)
        targets = self.deletable(spec)
        folder = self._folder(name)
        for number in targets:
            shutil.rmtree(folder / str(number))
        return [f"{name}@{n}" for n in targets]

    def deletable(self, spec: str) -> list[int]:
        """The versions :meth:`delete` would remove for ``spec``.

        Raises:
            UserError: no such adapter or version (naming what is registered).
        """
        name, version = parse_spec(spec)
        versions = self.versions(name)
        targets = [version] if version is not None else versions
        if not targets or (version is not None and version not in versions):
            known = ", ".join(c.spec for c in self.cards()) or "none"
            raise UserError(f"no adapter {spec!r} to delete; registered: {known}")
        return targets
