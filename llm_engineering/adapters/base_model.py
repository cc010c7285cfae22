"""Base models for training: where transformers loads one from, converting a GGUF once.

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
from pathlib import Path

__all__ = ["hub_cache", "in_hub_cache", "is_gguf", "looks_like_hub_id", "prepare_base"]

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


def prepare_base(base: str, cache_root: Path) -> tuple[str, Path | None, str | None]:
    """Where transformers loads ``base`` from.

    Returns:
        (HF model folder or hub id, the GGUF file or None, its sha256 or None).
    """
    if not is_gguf(base):
        return base, None, None
    from llm_engineering.generation.llamacpp import resolve_gguf
    from llm_engineering.index_store.hashing import sha256_file

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
