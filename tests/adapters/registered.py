"""Registry entries without training, for tests of how adapters are served (not what they say)."""

from __future__ import annotations

import json
from pathlib import Path

from llm_engineering.adapters.registry import AdapterCard, AdapterRegistry
from llm_engineering.generation.llamacpp import resolve_gguf
from llm_engineering.hashing import sha256_file

DEFAULT_BASE = "smollm2-135m-instruct"


def default_base_sha256() -> str:
    return sha256_file(resolve_gguf(DEFAULT_BASE))


def add_adapter(
    data_dir: Path,
    name: str,
    *,
    base_model: str = DEFAULT_BASE,
    base_sha256: str | None = None,
    rank: int = 16,
    gguf: bool = True,
) -> AdapterCard:
    """Register ``name`` as its next version: a PEFT folder with its config, and a stand-in
    GGUF (a server is only told its path) unless ``gguf`` is False."""
    staging = data_dir / "staging" / name
    peft = staging / "peft"
    peft.mkdir(parents=True, exist_ok=True)
    (peft / "adapter_config.json").write_text(
        json.dumps(
            {"peft_type": "LORA", "r": rank, "base_model_name_or_path": f"/bases/{base_model}"}
        )
    )
    (staging / "adapter.gguf").write_bytes(b"GGUF stand-in")
    base_gguf = (
        str(resolve_gguf(DEFAULT_BASE)) if base_model == DEFAULT_BASE else f"{base_model}.gguf"
    )
    card = AdapterCard(
        name=name, version=0, base_model=base_model, base_gguf=base_gguf,
        base_gguf_sha256=default_base_sha256() if base_sha256 is None else base_sha256,
        dataset_sha256="cd" * 32, dataset_examples=8, dataset_formats={"chat": 8},
        hyperparameters={"r": rank}, final_loss=0.1, best_loss=0.1, steps=2, train_tokens=100,
        job_id="j",
    )  # fmt: skip
    return AdapterRegistry(data_dir / "adapters").add(
        card, peft, staging / "adapter.gguf" if gguf else None
    )
