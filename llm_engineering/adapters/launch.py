"""What to start a model server with so that it serves the registered adapters.

``llm-eng adapters --serve KIND`` prints it: the command line for vLLM and llama-server,
and for llama-cpp-python the ``--config_file`` JSON itself. The server listens where
``llm_url`` points (or the kind's usual port), serves the base under the ``llm_model``
name, and the adapters under the names the answer path asks for, so that setting
``llm_url`` to it is all a user changes.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from llm_engineering.adapters.registry import AdapterCard
from llm_engineering.adapters.serving import AdapterResolver
from llm_engineering.config import Settings
from llm_engineering.errors import LlmEngError, UserError
from llm_engineering.generation.servers import PathMap, model_key

__all__ = ["Launch", "launch"]

_PORTS = {"vllm": 8000, "llama-server": 8080, "llama-cpp-python": 8000}
_VLLM_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


@dataclass
class Launch:
    kind: str
    text: str
    """What goes to stdout: the command line, or the JSON config file."""
    adapters: list[str]
    """``NAME@VERSION`` of the adapters it serves."""
    notes: list[str] = field(default_factory=list)
    """How to start it and what was left out, and why (for stderr)."""


def launch(
    kind: str, settings: Settings, resolver: AdapterResolver, cards: list[AdapterCard]
) -> Launch:
    """How to start a ``kind`` server for the adapters in ``cards``.

    Raises:
        UserError: an unknown kind, or no base model to serve.
    """
    if kind not in _PORTS:
        raise UserError(f"--serve takes vllm, llama-server or llama-cpp-python, not {kind!r}")
    host, port = _address(settings, kind)
    paths = PathMap(settings.data_dir / "adapters", settings.llm_server_adapters_path)
    notes: list[str] = []
    if kind == "vllm":
        result = _vllm(settings, host, port, paths, cards, notes)
    else:
        gguf = _base_gguf(settings)
        kept = []
        for card in cards:
            try:
                _check_gguf(resolver, card, gguf)
            except LlmEngError as exc:
                notes.append(f"left out: {exc}")
                continue
            kept.append(card)
        if kind == "llama-server":
            result = _llama_server(settings, gguf, host, port, paths, kept)
        else:
            result = _llama_cpp_python(settings, gguf, host, port, paths, kept)
    result.notes = notes + result.notes
    url = f"http://{host}:{port}"
    if settings.llm_url.rstrip("/").removesuffix("/v1") != url:
        result.notes.append(f"then answer through it: llm_url = {url} (LLM_ENG_LLM_URL={url})")
    return result


def _address(settings: Settings, kind: str) -> tuple[str, int]:
    if settings.llm_url:
        parsed = urlparse(settings.llm_url)
        default = 443 if parsed.scheme == "https" else 80
        return parsed.hostname or "127.0.0.1", parsed.port or default
    return "127.0.0.1", _PORTS[kind]


def _base_gguf(settings: Settings) -> Path:
    from llm_engineering.generation.llamacpp import resolve_gguf

    try:
        return resolve_gguf(settings.llm_model)
    except LlmEngError as exc:
        raise UserError(
            f"llm_model must name the GGUF the server loads ({exc}); with llm_url set, give "
            "its path (or the packaged name) while printing this command"
        ) from exc


def _check_gguf(resolver: AdapterResolver, card: AdapterCard, gguf: Path) -> None:
    if not card.base_gguf_sha256 or not card.gguf.is_file():
        raise UserError(f"{card.spec} has no GGUF export (trained on {card.base_model})")
    if resolver.sha256(gguf) != card.base_gguf_sha256:
        raise UserError(f"{card.spec} was trained on {card.base_gguf}, not on {gguf}")


def _llama_server(
    settings: Settings, gguf: Path, host: str, port: int, paths: PathMap, cards: list[AdapterCard]
) -> Launch:
    command = [
        "llama-server", "-m", str(gguf), "--alias", settings.llm_model, "--host", host,
        "--port", str(port), "-c", str(settings.llm_n_ctx), "-ngl", str(settings.llm_n_gpu_layers),
    ]  # fmt: skip
    if cards:
        # Loaded at scale 0: a request without `lora` is answered by the base.
        command.append("--lora-init-without-apply")
    for card in cards:
        command += ["--lora", paths.server(card.gguf)]
    return Launch("llama-server", shlex.join(command), [c.spec for c in cards])


def _llama_cpp_python(
    settings: Settings, gguf: Path, host: str, port: int, paths: PathMap, cards: list[AdapterCard]
) -> Launch:
    common: dict[str, object] = {
        "model": str(gguf),
        "n_ctx": settings.llm_n_ctx,
        "n_gpu_layers": settings.llm_n_gpu_layers,
        "verbose": False,
    }
    if settings.llm_chat_format:
        common["chat_format"] = settings.llm_chat_format
    models = [{**common, "model_alias": settings.llm_model}]
    latest: dict[str, AdapterCard] = {}
    for card in cards:
        if card.version > getattr(latest.get(card.name), "version", 0):
            latest[card.name] = card
    for name, card in sorted(latest.items()):
        models.append({**common, "model_alias": name, "lora_path": _lora(paths, card)})
    for card in cards:
        models.append({**common, "model_alias": card.spec, "lora_path": _lora(paths, card)})
    config = {"host": host, "port": port, "models": models}
    return Launch(
        "llama-cpp-python",
        json.dumps(config, indent=2),
        [c.spec for c in cards],
        notes=[
            "save this as models.json and start: python -m llama_cpp.server --config_file "
            "models.json (it loads one alias at a time: switching adapters reloads the model)"
        ],
    )


def _lora(paths: PathMap, card: AdapterCard) -> str:
    return paths.server(card.gguf)


def _vllm(
    settings: Settings,
    host: str,
    port: int,
    paths: PathMap,
    cards: list[AdapterCard],
    notes: list[str],
) -> Launch:
    wanted = model_key(settings.llm_model)
    kept: list[tuple[AdapterCard, dict[str, Any]]] = []
    for card in cards:
        config_file = card.peft / "adapter_config.json"
        if not config_file.is_file():
            notes.append(f"left out: {card.spec} has no PEFT folder")
            continue
        if wanted not in (model_key(card.base_model), model_key(card.base_gguf)):
            notes.append(f"left out: {card.spec} was trained on {card.base_model}, not {wanted}")
            continue
        kept.append((card, json.loads(config_file.read_text())))
    if not kept:
        raise UserError(
            f"no registered adapter of {settings.llm_model} has a PEFT folder for vLLM to serve"
        )
    # vLLM loads the transformers model the adapters were trained on: for a GGUF base,
    # the float copy training made of it.
    base = str(kept[0][1].get("base_model_name_or_path") or kept[0][0].base_model)
    rank = max(int(config.get("r") or 16) for _, config in kept)
    command = [
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True", "vllm", "serve", base,
        "--served-model-name", settings.llm_model, "--host", host, "--port", str(port),
        "--max-model-len", str(settings.llm_n_ctx), "--enable-lora",
        "--max-lora-rank", str(next((r for r in _VLLM_RANKS if r >= rank), rank)),
        "--max-loras", str(min(len(kept), 8)), "--lora-modules",
    ]  # fmt: skip
    command += [f"{card.spec}={paths.server(card.peft)}" for card, _ in kept]
    return Launch(
        "vllm",
        shlex.join(command),
        [card.spec for card, _ in kept],
        notes=[
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True lets adapters registered later load on first use"
        ],
    )
