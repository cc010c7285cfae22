"""LoRA adapters over one loaded llama.cpp model, switched per request.

``Llama(lora_path=...)`` loads a whole copy of the model per adapter (and turns mmap off).
Here the base is loaded once, mmapped; each adapter is a llama.cpp LoRA object
(``llama_adapter_lora_init``) on that model, a few MB, set on the one context for the
request that asks for it (``llama_set_adapters_lora``; none for the base). Adapters stay
loaded, least recently used unloaded first, while their bytes fit ``budget_bytes``.

Not thread-safe: the generator calls it under its own lock, with the context idle.
"""

from __future__ import annotations

import ctypes
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_engineering.errors import ModelLoadError
from llm_engineering.generation.base import ServedAdapter

__all__ = ["LoadedLoras"]

log = logging.getLogger(__name__)


@dataclass
class _Loaded:
    spec: str
    handle: Any
    """The ``llama_adapter_lora *``."""
    size: int


class LoadedLoras:
    """The adapters loaded on one model, and the one set on its context.

    Args:
        model: The ``llama_model *`` (``Llama._model.model``).
        ctx: The ``llama_context *`` (``Llama._ctx.ctx``).
        budget_bytes: Bytes of adapters kept loaded; the adapter in use always stays, even
            alone over the budget.
    """

    def __init__(self, model: Any, ctx: Any, budget_bytes: int):
        self._model = model
        self._ctx = ctx
        self.budget_bytes = budget_bytes
        self._loaded: OrderedDict[str, _Loaded] = OrderedDict()  # by GGUF path, LRU first
        self.active: str | None = None
        """The GGUF path of the adapter set on the context (None: the base)."""

    def use(self, adapter: ServedAdapter | None) -> bool:
        """Set ``adapter`` (None: none) on the context, loading it first if needed.

        Returns:
            Whether it was loaded now (False when it was resident, or for the base).

        Raises:
            ModelLoadError: llama.cpp refused the file (not a LoRA of this model's architecture).
        """
        import llama_cpp

        # Versions deleted by another process (`llm-eng adapters --delete`) go at the next call.
        for gone in [key for key in self._loaded if not Path(key).exists()]:
            self._free(gone)
        if adapter is None:
            if self.active is not None:
                self._set(None)
            return False
        key = str(adapter.lora)
        loaded_now = key not in self._loaded
        if loaded_now:
            handle = llama_cpp.llama_adapter_lora_init(self._model, key.encode("utf-8"))
            if not handle:
                raise ModelLoadError(
                    f"llama.cpp could not load adapter {adapter.spec} from {key}: not a GGUF LoRA "
                    "of this model's architecture (see the log for llama.cpp's reason)"
                )
            self._loaded[key] = _Loaded(adapter.spec, handle, adapter.size)
            log.info("adapter %s loaded (%.1f MB)", adapter.spec, adapter.size / 2**20)
        self._loaded.move_to_end(key)
        if self.active != key:
            self._set(key)
        self._evict()
        return loaded_now

    def _set(self, key: str | None) -> None:
        import llama_cpp

        if key is None:
            status = llama_cpp.llama_set_adapters_lora(self._ctx, None, 0, None)
        else:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._loaded[key].handle)
            scales = (ctypes.c_float * 1)(1.0)
            status = llama_cpp.llama_set_adapters_lora(self._ctx, adapters, 1, scales)
        if status != 0:
            raise ModelLoadError(f"llama.cpp could not set the adapter {key} (status {status})")
        self.active = key

    def _evict(self) -> None:
        while self.resident_bytes > self.budget_bytes:
            victim = next((k for k in self._loaded if k != self.active), None)
            if victim is None:
                return
            self._free(victim)

    def _free(self, key: str) -> None:
        import llama_cpp

        if self.active == key:
            self._set(None)  # never free what the context still points at
        loaded = self._loaded.pop(key)
        llama_cpp.llama_adapter_lora_free(loaded.handle)
        log.info("adapter %s unloaded", loaded.spec)

    @property
    def resident_bytes(self) -> int:
        return sum(loaded.size for loaded in self._loaded.values())

    def specs(self) -> list[str]:
        """``NAME@VERSION`` of the loaded adapters, least recently used first."""
        return [loaded.spec for loaded in self._loaded.values()]

    def release(self, specs: Sequence[str]) -> list[str]:
        """Unload the adapters ``specs`` that are loaded; the specs unloaded."""
        wanted = set(specs)
        freed = [
            (key, loaded.spec) for key, loaded in self._loaded.items() if loaded.spec in wanted
        ]
        for key, _ in freed:
            self._free(key)
        return [spec for _, spec in freed]

    def close(self) -> None:
        """Unload every adapter; call before the model is freed (it would free them too)."""
        for key in list(self._loaded):
            self._free(key)
