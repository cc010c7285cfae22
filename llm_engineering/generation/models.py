"""Choosing and caching generators: llama.cpp in process, or an OpenAI-compatible server."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from llm_engineering.config import Settings
from llm_engineering.generation.base import Generator

__all__ = ["GeneratorCache", "open_generator"]


def open_generator(settings: Settings, lora_path: Path | None = None) -> Generator:
    """The generator the settings describe (``llm_url`` set: a server; else llama.cpp).

    Raises:
        PathError, ConfigError, ModelLoadError: the model cannot be found or loaded.
    """
    if settings.llm_url:
        from llm_engineering.errors import ConfigError
        from llm_engineering.generation.openai_compat import OpenAICompatibleGenerator

        if lora_path is not None:
            raise ConfigError(
                "adapters are served by the local llama.cpp backend; with llm_url set, load the "
                "adapter into the remote server instead"
            )
        key = (
            settings.llm_api_key.get_secret_value()
            if settings.llm_api_key
            else os.environ.get("OPENAI_API_KEY")
        )
        model = "" if settings.llm_model == "smollm2-135m-instruct" else settings.llm_model
        return OpenAICompatibleGenerator(settings.llm_url, model, key, settings.llm_n_ctx)
    from llm_engineering.generation.llamacpp import LlamaCppGenerator

    return LlamaCppGenerator(
        settings.llm_model,
        n_ctx=settings.llm_n_ctx,
        n_gpu_layers=settings.llm_n_gpu_layers,
        n_threads=settings.llm_n_threads,
        chat_format=settings.llm_chat_format,
        chat_template=settings.llm_chat_template,
        lora_path=lora_path,
    )


class GeneratorCache:
    """Loaded generators by adapter (None = the base model), least recently used dropped first."""

    def __init__(self, settings: Settings, size: int | None = None):
        self._settings = settings
        self._size = size or settings.adapter_cache_size
        self._loaded: OrderedDict[Path | None, Generator] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, lora_path: Path | None = None) -> Generator:
        with self._lock:
            if lora_path in self._loaded:
                self._loaded.move_to_end(lora_path)
                return self._loaded[lora_path]
            generator = open_generator(self._settings, lora_path)
            self._loaded[lora_path] = generator
            while len(self._loaded) > self._size:
                _, evicted = self._loaded.popitem(last=False)
                evicted.close()
            return generator

    def drop_missing(self) -> None:
        """Unload adapters whose files were deleted."""
        with self._lock:
            for path in [p for p in self._loaded if p is not None and not p.exists()]:
                self._loaded.pop(path).close()

    def close(self) -> None:
        with self._lock:
            for generator in self._loaded.values():
                generator.close()
            self._loaded.clear()
