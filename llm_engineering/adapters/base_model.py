"""Base models for training: which one a request names, and where transformers loads it
from, converting a GGUF once.

A GGUF (the default is the packaged SmolLM2) is read by transformers, which dequantizes
it; the result cannot be saved as is, so its weights are copied into a fresh model of the
same config and saved once per GGUF (by sha256) under the data folder. Training loads that
copy (:mod:`llm_engineering.adapters.lora_model`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from llm_engineering.errors import PathError, UserError

__all__ = [
    "hub_cache",
    "in_hub_cache",
    "is_gguf",
    "is_path",
    "layer_names",
    "looks_like_hub_id",
    "prepare_base",
    "resolve_base",
    "unmatched_targets",
]

log = logging.getLogger(__name__)

# The hub's own rule for repository ids: NAME or ORG/NAME, each starting with a letter or digit.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")


def is_gguf(base: str) -> bool:
    from llm_engineering.packaged import PACKAGED_GGUF

    return base in PACKAGED_GGUF or base.endswith(".gguf")


def looks_like_hub_id(name: str) -> bool:
    """Whether ``name`` could be a Hugging Face model id (``NAME`` or ``ORG/NAME``)."""
    return bool(_HUB_ID.fullmatch(name)) and ".." not in name and not name.endswith(".gguf")


def hub_cache() -> str:
    """The Hugging Face hub cache this process reads (``HF_HUB_CACHE``, ``HF_HOME``/hub)."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def in_hub_cache(name: str) -> bool:
    """Whether the model ``name`` is in the local Hugging Face cache (its config.json is)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # a name the hub library refuses is simply not cached
        return False


def resolve_base(
    requested: str | None, configured: Sequence[str], roots: Sequence[Path] | None
) -> str:
    """The base a request names: ``requested``, else the first of ``configured``.

    A name is a path when it is absolute, starts with ``.`` or ``~``, ends in ``.gguf``,
    lies (relative to the working directory) inside the allowed folders, or is no hub id
    (``NAME`` or ``ORG/NAME``); a path is taken in full. Any other name is a Hugging Face
    id, which must be in the local hub cache; only the CLI's user (``roots`` None) may have
    it downloaded, when the hub answers.

    With ``roots`` (a request from an agent), a path other than the configured models must
    lie inside them or a configured model's folder; anything else is refused before the
    file system is asked about it, so the error tells nothing of what exists outside.

    Raises:
        PathError, ConfigError, UserError: a GGUF or local folder that does not exist or is
            not a model, a path outside the allowed folders, or a hub id not in the cache.
    """
    from llm_engineering.packaged import PACKAGED_GGUF

    base = (requested or "").strip() or configured[0]
    if base in configured or base in PACKAGED_GGUF:
        return _checked_base(base)
    path = Path(base).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    if roots is not None:
        from llm_engineering.paths import confine, is_inside

        allowed = [*roots, *(Path(m).expanduser().parent for m in configured if is_path(m))]
        if looks_like_hub_id(base) and not is_inside(path, allowed):
            return _cached_hub_id(base, allowed)
        path = confine(path, allowed, what="base_model")
    elif looks_like_hub_id(base) and not _exists(path):
        return _cached_hub_id(base, None)
    return _checked_base(base, path)


def is_path(name: str) -> bool:
    """A file system path rather than a packaged name or a hub id (``org/model``)."""
    return name.startswith(("/", ".", "~")) or name.endswith(".gguf")


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, a NUL byte: no such file
        return False


def _checked_base(base: str, path: Path | None = None) -> str:
    """``base`` checked: configured or packaged as it is set (``path`` None), a requested
    path (``path``, absolute) taken in full.

    Raises:
        PathError, ConfigError: no GGUF there, or no transformers model in the folder.
    """
    from llm_engineering.generation.llamacpp import resolve_gguf

    if path is None:
        if is_gguf(base):
            resolve_gguf(base)
            return base
        if not is_path(base):
            return base  # a hub id the operator set
        path = Path(base).expanduser()
    if is_gguf(base):
        return str(resolve_gguf(str(path)).resolve())
    if not (path / "config.json").is_file():
        raise PathError(
            f"base_model {base}: no transformers model there (expected {path / 'config.json'})"
        )
    return str(path.resolve())


def _cached_hub_id(name: str, roots: list[Path] | None) -> str:
    """``name`` when the hub model is in the local cache (or, for the CLI, the hub answers).

    Raises:
        UserError: neither; the message says where the cache is and what to do.
    """
    if in_hub_cache(name):
        return name
    cache = hub_cache()
    fetch = (
        f"download it once on a connected machine (huggingface-cli download {name}) into the "
        "hub cache (HF_HOME), or give the path of a model folder"
    )
    if roots is not None:
        allowed = ", ".join(str(r) for r in roots) or "(none configured)"
        raise UserError(
            f"base_model {name!r} is no folder inside the allowed folders ({allowed}) and not a "
            f"model in the local Hugging Face cache ({cache}); this server does not download "
            f"models from the hub: {fetch} inside those folders"
        )
    from llm_engineering.index_store.models.embeddings import hub_reachable

    if hub_reachable():
        return name
    raise UserError(
        f"base_model {name!r} is no file or folder here, not in the local Hugging Face cache "
        f"({cache}), and huggingface.co cannot be reached: {fetch}"
    )


def layer_names(base: str) -> list[str]:
    """The full names of the layers of ``base`` that LoRA can wrap (linear, embedding and
    convolution layers), from its configuration alone.

    The model is built on torch's meta device: no weight is read or allocated. For the
    packaged 135M GGUF this takes about 5 s (reading the GGUF's metadata), against 20 s to
    load the model.

    Raises:
        UserError: the configuration cannot be read or the model cannot be built from it.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        if is_gguf(base):
            from llm_engineering.generation.llamacpp import resolve_gguf

            gguf = resolve_gguf(base)
            config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        else:
            config = AutoConfig.from_pretrained(base, local_files_only=True)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except Exception as exc:  # transformers raises what it likes for a model it cannot read
        raise UserError(
            f"cannot read the layers of base_model {base} to check target_modules: {exc}; "
            "use target_modules='all-linear'"
        ) from exc
    wrappable = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d)
    return [
        name
        for name, module in model.named_modules()
        # Conv1D: transformers' own linear layer (GPT-2 and its kin)
        if isinstance(module, wrappable) or type(module).__name__ == "Conv1D"
    ]


def unmatched_targets(target: str | list[str], layers: Sequence[str]) -> list[str]:
    """The entries of ``target_modules`` that match none of ``layers``, read as peft reads
    them: a string is a regular expression a whole name must match (``all-linear`` matches
    every linear layer), a list holds names or the endings of names."""
    if target == "all-linear":
        return []
    if isinstance(target, str):
        return [] if any(re.fullmatch(target, name) for name in layers) else [target]
    return [t for t in target if not any(n == t or n.endswith(f".{t}") for n in layers)]


def prepare_base(base: str, cache_root: Path) -> tuple[str, Path | None, str | None]:
    """Where transformers loads ``base`` from.

    Returns:
        (HF model folder or hub id, the GGUF file or None, its sha256 or None).
    """
    if not is_gguf(base):
        return base, None, None
    from llm_engineering.generation.llamacpp import resolve_gguf
    from llm_engineering.hashing import sha256_file

    gguf = resolve_gguf(base)
    digest = sha256_file(gguf)
    target = cache_root / digest[:16]
    if (target / "config.json").is_file():
        return str(target), gguf, digest
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s for training (once per GGUF)", gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained; a fresh model with its weights does not.
    fresh = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    staging = cache_root / f".{digest[:16]}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    fresh.save_pretrained(str(staging))
    # The copy is plain float32; the GGUF quantization note would make transformers refuse
    # the BitsAndBytesConfig that training loads it with.
    config_file = staging / "config.json"
    saved = json.loads(config_file.read_text())
    saved.pop("quantization_config", None)
    config_file.write_text(json.dumps(saved, indent=2))
    tokenizer.save_pretrained(str(staging))
    if target.exists():  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    else:
        staging.rename(target)
    return str(target), gguf, digest
