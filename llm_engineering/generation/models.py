"""Choosing the generator: llama.cpp in process, or an OpenAI-compatible server; and its adapters.

One base model serves every adapter: in process, adapters are LoRA objects over the one
loaded model (:mod:`llm_engineering.generation.lora`); on a server, requests name them as
its kind wants (:mod:`llm_engineering.generation.servers`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence

from llm_engineering.config import Settings
from llm_engineering.errors import LlmEngError
from llm_engineering.generation.base import (
    Availability,
    Completion,
    Generator,
    Message,
    ServedAdapter,
    TokenFn,
)

__all__ = ["AdapterView", "GeneratorCache", "open_generator"]


def open_generator(settings: Settings) -> Generator:
    """The generator the settings describe (``llm_url`` set: a server; else llama.cpp).

    Raises:
        PathError, ConfigError, ModelLoadError: the model cannot be found or loaded.
    """
    if settings.llm_url:
        from llm_engineering.generation.openai_compat import OpenAICompatibleGenerator
        from llm_engineering.generation.servers import PathMap

        key = (
            settings.llm_api_key.get_secret_value()
            if settings.llm_api_key
            else os.environ.get("OPENAI_API_KEY")
        )
        model = "" if settings.llm_model == "smollm2-135m-instruct" else settings.llm_model
        paths = PathMap(settings.data_dir / "adapters", settings.llm_server_adapters_path)
        return OpenAICompatibleGenerator(
            settings.llm_url, model, key, settings.llm_n_ctx, kind=settings.llm_server, paths=paths
        )
    from llm_engineering.generation.llamacpp import LlamaCppGenerator

    return LlamaCppGenerator(
        settings.llm_model,
        n_ctx=settings.llm_n_ctx,
        n_gpu_layers=settings.llm_n_gpu_layers,
        n_threads=settings.llm_n_threads,
        chat_format=settings.llm_chat_format,
        chat_template=settings.llm_chat_template,
        adapter_budget_bytes=int(settings.adapter_memory_mb * 2**20),
    )


class AdapterView:
    """A generator that answers with one adapter: the base generator's calls, adapter set."""

    def __init__(self, base: Generator, adapter: ServedAdapter):
        self.base = base
        self.adapter = adapter
        self.name = base.name
        self.context_window = base.context_window

    def count_tokens(self, text: str) -> int:
        return self.base.count_tokens(text)

    def chat(
        self,
        messages: Sequence[Message],
        max_tokens: int,
        temperature: float,
        on_token: TokenFn | None = None,
        time_limit_s: float | None = None,
        adapter: ServedAdapter | None = None,
    ) -> Completion:
        return self.base.chat(
            messages, max_tokens, temperature, on_token, time_limit_s, adapter or self.adapter
        )

    def availability(self, adapter: ServedAdapter) -> Availability:
        return self.base.availability(adapter)

    def release(self, specs: Sequence[str]) -> list[str]:
        return self.base.release(specs)

    def close(self) -> None:
        """The base generator is the cache's to close."""


class GeneratorCache:
    """The one generator the settings describe, opened on first use, with its adapters.

    Args:
        settings: Which model (or server) answers, and how much adapter memory to keep.
        opener: Opens the generator (tests pass another through this seam).
    """

    def __init__(
        self, settings: Settings, opener: Callable[[Settings], Generator] = open_generator
    ):
        self._settings = settings
        self._opener = opener
        self._generator: Generator | None = None
        self._lock = threading.Lock()

    def get(self, adapter: ServedAdapter | None = None) -> Generator:
        """The generator, answering with ``adapter`` (None: the base model).

        Raises:
            PathError, ConfigError, ModelLoadError: the model cannot be found or loaded.
        """
        with self._lock:
            if self._generator is None:
                self._generator = self._opener(self._settings)
            generator = self._generator
        return generator if adapter is None else AdapterView(generator, adapter)

    @property
    def loaded(self) -> Generator | None:
        """The generator when it has been opened (nothing is loaded to answer this)."""
        return self._generator

    def availability(self, adapter: ServedAdapter) -> Availability:
        """Where ``adapter`` can be answered with now. In process this loads nothing."""
        if not self._settings.llm_url and self._generator is None:
            return Availability("in_process", f"loads on first use ({adapter.size / 2**20:.1f} MB)")
        try:
            return self.get().availability(adapter)
        except LlmEngError as exc:  # the server is down or refuses: say so in the listing
            return Availability("none", str(exc))

    def release(self, specs: Sequence[str]) -> list[str]:
        """Free deleted adapter versions where they are loaded; notes on what stays loaded.

        In process nothing is opened for this; a server is asked (vLLM unloads them).
        """
        if not specs or (not self._settings.llm_url and self._generator is None):
            return []
        try:
            return self.get().release(specs)
        except LlmEngError as exc:
            return [f"could not unload {', '.join(specs)} from the model server: {exc}"]

    def close(self) -> None:
        with self._lock:
            generator, self._generator = self._generator, None
        if generator is not None:
            generator.close()
