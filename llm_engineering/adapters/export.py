"""PEFT LoRA -> GGUF LoRA, the format llama.cpp loads with ``lora_path``.

What llama.cpp expects (``llama-adapter.cpp``): ``general.architecture`` equal to the
base model's, ``general.type = adapter``, ``adapter.type = lora``, ``adapter.lora.alpha``
(llama.cpp scales by alpha / rank, as peft does), and for every adapted weight ``W`` a
pair ``W.lora_a`` (ggml shape [in, r], i.e. peft's A as is) and ``W.lora_b`` ([r, out],
peft's B). GGUF stores the llama q and k projections with their rows permuted for
llama.cpp's rope layout (``convert_hf_to_gguf.py``, ``LlamaModel.permute``); since
``W = B @ A`` the same row permutation is applied to B.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from llm_engineering.errors import ExportError

__all__ = ["export_gguf_lora", "gguf_tensor_name"]

_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")
_NAMES = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}
_ARCHITECTURES = {"llama": "llama", "mistral": "llama"}


def gguf_tensor_name(peft_key: str) -> tuple[str, str, str]:
    """(GGUF tensor name, 'a' or 'b', HF projection) for one peft state-dict key.

    Raises:
        ExportError: the key is not a LoRA weight of a llama attention or MLP projection.
    """
    match = _LAYER.search(peft_key)
    if match is None or match.group(3) not in _NAMES:
        raise ExportError(
            f"cannot map adapter tensor {peft_key!r} to llama.cpp; only the attention and MLP "
            "projections of llama-architecture models are supported"
        )
    layer, _, projection, which = match.groups()
    return (
        f"blk.{layer}.{_NAMES[projection]}.weight.lora_{which.lower()}",
        which.lower(),
        projection,
    )


def _permute_rows(b: Any, n_head: int) -> Any:
    rows = b.shape[0]
    return b.reshape(n_head, 2, rows // n_head // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)


def export_gguf_lora(peft_dir: Path, target: Path, base_config: dict[str, Any]) -> dict[str, Any]:
    """Write ``target`` (a GGUF LoRA) from the peft adapter in ``peft_dir``.

    Args:
        peft_dir: A folder from ``PeftModel.save_pretrained`` (adapter_config.json and
            adapter_model.safetensors).
        target: The .gguf file to write.
        base_config: The base model's transformers config (``model_type``,
            ``num_attention_heads``, ``num_key_value_heads``).

    Returns:
        A summary: tensor pairs written, rank, alpha.

    Raises:
        ExportError: not a llama-architecture base, or an adapted layer llama.cpp cannot take.
    """
    import numpy as np
    from gguf import GGUFWriter
    from safetensors.numpy import load_file

    model_type = base_config.get("model_type", "")
    if model_type not in _ARCHITECTURES:
        raise ExportError(
            f"exporting adapters to GGUF supports llama-architecture models; this base is {model_type!r}"
        )
    adapter_config = json.loads((peft_dir / "adapter_config.json").read_text())
    if adapter_config.get("use_dora") or adapter_config.get("use_rslora"):
        raise ExportError("DoRA and rsLoRA adapters cannot be exported to llama.cpp's LoRA format")
    alpha = float(adapter_config["lora_alpha"])
    n_head = int(base_config["num_attention_heads"])
    n_head_kv = int(base_config.get("num_key_value_heads") or n_head)
    weights = load_file(str(peft_dir / "adapter_model.safetensors"))

    tensors: dict[str, Any] = {}
    for key, value in weights.items():
        name, which, projection = gguf_tensor_name(key)
        array = value.astype(np.float32)
        if which == "b" and projection == "q_proj":
            array = _permute_rows(array, n_head)
        elif which == "b" and projection == "k_proj":
            array = _permute_rows(array, n_head_kv)
        tensors[name] = np.ascontiguousarray(array)
    pairs = sorted({name.rsplit(".", 1)[0] for name in tensors})
    for pair in pairs:
        if f"{pair}.lora_a" not in tensors or f"{pair}.lora_b" not in tensors:
            raise ExportError(f"adapter tensor {pair} has only one of its two LoRA halves")

    partial = target.with_name(target.name + ".partial")
    writer = GGUFWriter(str(partial), arch=_ARCHITECTURES[model_type])
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", alpha)
    for name in sorted(tensors):
        writer.add_tensor(name, tensors[name])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(target)
    return {"pairs": len(pairs), "rank": int(adapter_config["r"]), "alpha": alpha}
