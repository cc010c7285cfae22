"""A sentence-transformers BERT model run with torch alone, for the CPU.

Importing sentence-transformers costs about 9 CPU-seconds on this class of machine (it
imports its trainers, hence transformers' training stack, peft, bitsandbytes,
torch._dynamo, sympy, scikit-learn), more than the packaged model takes to load and
embed a few hundred chunks. Every process that embeds paid it: the server, each
``llm-eng search`` or ``ask``, the embedding server. A folder that holds a plain BERT
sentence-transformers model (``modules.json`` = Transformer, mean or CLS Pooling,
optionally Normalize; ``config.json`` a BERT with absolute positions and exact GELU;
``model.safetensors``; ``tokenizer.json``; no prompts) is the same few tensor operations,
run here from its own files with torch, ``safetensors`` and ``tokenizers`` (about 2 s).
Anything else (another architecture, a Dense layer, prompts, a GPU) is left to
sentence-transformers, which :class:`Embedder` loads as before.

The vectors are sentence-transformers' own to float rounding: ``test_bert_encoder.py``
compares them on texts that cover truncation, accents, CJK and empty strings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["BertEncoder", "load_bert_encoder"]

_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"
_POOLING_MODES = (
    "pooling_mode_cls_token",
    "pooling_mode_mean_tokens",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _plan(folder: Path) -> dict[str, Any] | None:
    """What to run for ``folder``, or None when it is not a model this module runs."""
    modules = _json(folder / "modules.json")
    if not isinstance(modules, list) or not 2 <= len(modules) <= 3:
        return None
    types = [m.get("type") for m in modules]
    if types[:2] != [_TRANSFORMER, _POOLING] or types[2:] not in ([], [_NORMALIZE]):
        return None
    if modules[0].get("path") not in ("", None):
        return None
    config = _json(folder / "config.json") or {}
    if (
        config.get("model_type") != "bert"
        or config.get("position_embedding_type", "absolute") != "absolute"
        or config.get("hidden_act") != "gelu"
        or config.get("is_decoder")
        or config.get("add_cross_attention")
    ):
        return None
    st_config = _json(folder / "config_sentence_transformers.json") or {}
    if st_config.get("prompts") or st_config.get("default_prompt_name"):
        return None
    bert_config = _json(folder / "sentence_bert_config.json") or {}
    if bert_config.get("do_lower_case") or set(bert_config) - {"max_seq_length", "do_lower_case"}:
        return None
    pooling = _json(folder / str(modules[1].get("path", "")) / "config.json") or {}
    modes = [mode for mode in _POOLING_MODES if pooling.get(mode)]
    if modes not in (["pooling_mode_cls_token"], ["pooling_mode_mean_tokens"]):
        return None
    if pooling.get("include_prompt") is False:
        return None
    if not (folder / "model.safetensors").is_file() or not (folder / "tokenizer.json").is_file():
        return None
    max_positions = int(config.get("max_position_embeddings", 512))
    return {
        "config": config,
        "mean": modes == ["pooling_mode_mean_tokens"],
        "normalize": len(modules) == 3,
        "max_seq_length": min(int(bert_config.get("max_seq_length") or 512), max_positions),
    }


def load_bert_encoder(folder: str | Path) -> BertEncoder | None:
    """The encoder for a plain BERT sentence-transformers folder, or None for any other model."""
    folder = Path(folder)
    plan = _plan(folder) if folder.is_dir() else None
    return BertEncoder(folder, **plan) if plan is not None else None


class BertEncoder:
    """Embeds texts as sentence-transformers would, on the CPU.

    Args:
        folder: The model folder (see the module docstring for what it holds).
        config: Its ``config.json``.
        mean: Mean pooling over the tokens (else the CLS token's state).
        normalize: Scale each vector to length 1.
        max_seq_length: Tokens per text, special tokens included; the rest is cut.
    """

    def __init__(
        self,
        folder: Path,
        config: dict[str, Any],
        mean: bool,
        normalize: bool,
        max_seq_length: int,
    ):
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        self._mean = mean
        self._normalize = normalize
        self.max_seq_length = max_seq_length
        self.dimension = int(config["hidden_size"])
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        self._pad_id = int(config.get("pad_token_id") or 0)
        weights = load_file(str(folder / "model.safetensors"))
        self._w = {k.removeprefix("bert."): v.float() for k, v in weights.items()}
        self._w16: dict[str, Any] | None = None
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_seq_length)

    def encode(
        self, texts: Sequence[str], batch_size: int = 32, precision: str = "float32"
    ) -> list[list[float]]:
        """One vector per text, in order. Texts are batched by token length (less padding).

        ``bfloat16``: torch's CPU autocast (matrix products and attention in bfloat16; layer
        norms, softmax and pooling in float32) over a bfloat16 copy of the linear weights
        made once: autocast alone cast every weight on every call, and a one-line query took
        5.5 ms instead of float32's 4.6 (:mod:`.precision` says when bfloat16 pays).
        """
        import torch

        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        vectors: list[list[float]] = [[] for _ in encodings]
        lowered = self._lowered() if precision == "bfloat16" else None
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=lowered is not None),
        ):
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                width = max(len(encodings[i].ids) for i in batch)
                ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.bool)
                for row, i in enumerate(batch):
                    n = len(encodings[i].ids)
                    ids[row, :n] = torch.tensor(encodings[i].ids, dtype=torch.long)
                    mask[row, :n] = True
                pooled = self._forward(ids, mask, lowered).float()
                for i, vector in zip(batch, pooled.tolist(), strict=True):
                    vectors[i] = vector
        return vectors

    def _lowered(self) -> dict[str, Any]:
        """The linear layers' weights and biases in bfloat16, cast on first use."""
        import torch

        if self._w16 is None:
            self._w16 = {
                k: v.to(torch.bfloat16)
                for k, v in self._w.items()
                if k.startswith("encoder.") and "LayerNorm" not in k
            }
        return self._w16

    def _forward(self, ids: Any, mask: Any, lowered: dict[str, Any] | None = None) -> Any:
        import torch.nn.functional as F

        w = self._w
        hidden = self.dimension
        batch, width = ids.shape
        head = hidden // self._heads

        def norm(x: Any, name: str) -> Any:
            return F.layer_norm(x, (hidden,), w[f"{name}.weight"], w[f"{name}.bias"], self._eps)

        linear = lowered or w

        def dense(x: Any, name: str) -> Any:
            return F.linear(x, linear[f"{name}.weight"], linear[f"{name}.bias"])

        def heads(x: Any) -> Any:
            return x.view(batch, width, self._heads, head).transpose(1, 2)

        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:width].unsqueeze(0)
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = norm(x, "embeddings.LayerNorm")
        attend = mask[:, None, None, :]
        for n in range(self._layers):
            layer = f"encoder.layer.{n}"
            q, k, v = (
                heads(dense(x, f"{layer}.attention.self.{p}")) for p in ("query", "key", "value")
            )
            context = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attend, scale=1.0 / math.sqrt(head)
            )
            context = context.transpose(1, 2).reshape(batch, width, hidden)
            x = norm(
                dense(context, f"{layer}.attention.output.dense") + x,
                f"{layer}.attention.output.LayerNorm",
            )
            inner = F.gelu(dense(x, f"{layer}.intermediate.dense"))
            x = norm(dense(inner, f"{layer}.output.dense") + x, f"{layer}.output.LayerNorm")
        if self._mean:
            weights = mask.unsqueeze(-1).to(x.dtype)
            pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        else:
            pooled = x[:, 0]
        if self._normalize:
            pooled = F.normalize(pooled, p=2, dim=1)
        return pooled
