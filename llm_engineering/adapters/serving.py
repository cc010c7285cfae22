"""Registered adapters as the answer path serves them: resolution, and where each can answer.

In process an adapter must be a GGUF LoRA exported on the very GGUF ``llm_model`` serves
(checked by sha256). With ``llm_url`` the server's kind decides what it needs, and the
base is checked by name against the server's model
(:mod:`llm_engineering.generation.servers`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from llm_engineering.adapters.registry import AdapterCard, AdapterRegistry
from llm_engineering.config import Settings
from llm_engineering.errors import LlmEngError, UserError
from llm_engineering.generation.base import Availability, ServedAdapter

if TYPE_CHECKING:
    from llm_engineering.generation.models import GeneratorCache

__all__ = ["AdapterResolver", "availability"]


class AdapterResolver:
    """``NAME[@VERSION]`` -> the :class:`ServedAdapter` to answer with, for these settings."""

    def __init__(self, settings: Settings, registry: AdapterRegistry):
        self.settings = settings
        self.registry = registry
        self._digests: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def served(self, card: AdapterCard) -> ServedAdapter:
        """The card as the answer path uses it, unchecked."""
        return ServedAdapter(
            card.spec, card.gguf, card.system_prompt,
            peft=card.peft, base_model=card.base_model,
            base_gguf=card.base_gguf,
        )  # fmt: skip

    def resolve(self, spec: str) -> ServedAdapter:
        """The adapter ``spec`` names, checked for the backend that answers.

        Raises:
            UserError: unknown adapter or version, or (in process) no GGUF export or trained
                on a different base GGUF than ``llm_model``.
        """
        card = self.registry.get(spec)
        served = self.served(card)
        if not self.settings.llm_url:
            self.check_in_process(card)
        return served

    def check_in_process(self, card: AdapterCard) -> None:
        """Raise a UserError unless llama.cpp can serve ``card`` over ``llm_model`` here."""
        from llm_engineering.generation.llamacpp import resolve_gguf

        if not card.base_gguf_sha256 or not card.gguf.is_file():
            raise UserError(
                f"adapter {card.spec} was trained on {card.base_model}, which is not a GGUF model, "
                "so llama.cpp cannot serve it; train it on the served GGUF (the default base), or "
                "serve it with vLLM (llm_url, `llm-eng adapters --serve vllm`)"
            )
        model = resolve_gguf(self.settings.llm_model)
        digest = self.sha256(model)
        if digest != card.base_gguf_sha256:
            raise UserError(
                f"adapter {card.spec} was trained on the GGUF {card.base_gguf} (sha256 "
                f"{card.base_gguf_sha256[:12]}), but this server serves {model} (sha256 "
                f"{digest[:12]}); serve that model (llm_model) or train the adapter again on this one"
            )

    def sha256(self, path: Path) -> str:
        """The file's sha256, computed once per (path, size, mtime)."""
        from llm_engineering.hashing import sha256_file

        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key not in self._digests:
                self._digests[key] = sha256_file(path)
            return self._digests[key]


def availability(
    resolver: AdapterResolver, generators: GeneratorCache, cards: Sequence[AdapterCard]
) -> list[Availability]:
    """Where each adapter version can be answered with now, or why not (in order).

    In process this loads no model; with ``llm_url`` it asks the server.
    """
    found = []
    for card in cards:
        try:
            served = resolver.resolve(card.spec)
        except LlmEngError as exc:
            found.append(Availability("none", str(exc)))
            continue
        found.append(generators.availability(served))
    return found
