"""Fine-tune a sentence-transformers embedding model on (query, passage) pairs.

The loss is sentence-transformers' MultipleNegativesRankingLoss: each query's cosine to
every positive and every hard negative in its batch, times ``scale``, goes through a
cross-entropy whose label is its own positive. The model runs as the packaged one does
(transformers ``AutoModel``, mean pooling over the attention mask, L2 normalisation);
sentence-transformers itself is not imported (its import costs about 9 s, see
:mod:`llm_engineering.index_store.models.bert_encoder`).

The result is a complete sentence-transformers folder: every file of the source but its
weights, and a new ``model.safetensors`` with the source's tensor names and dtypes, so the
project's own torch encoder runs it as it runs the source.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_engineering.errors import PathError, TrainingFailed, UserError

__all__ = ["Pair", "TuneConfig", "TuneResult", "TuneStep", "tune_embedder"]

# Weights the new model.safetensors replaces; a stale copy in another format would load instead.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ot", ".onnx")
_WEIGHT_FOLDERS = {"onnx", "openvino"}
# The encoder's linear layers; the pooler's dense layer is not used by mean pooling.
_LORA_TARGETS = r".*encoder\.layer\.\d+\..*(query|key|value|dense)"


@dataclass(frozen=True)
class Pair:
    """A query and the passage it should find, with passages it should not (hard negatives)."""

    query: str
    positive: str
    negatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class TuneConfig:
    """How to tune; validated at construction (a bad value is a :class:`UserError`).

    The defaults are the best of ``benchmarks/retrieval_tuning.py`` on SciFact (tune on half
    the train claims, score the other half, dense nDCG@10 0.671 untuned): every weight at 1e-4
    for 3 epochs 0.734; at 2e-5 0.686, 5e-5 0.711, 2e-4 0.736 (loss near 0: no better, less
    safe); LoRA rank 16 at 1e-3 0.704; one mined hard negative a pair 0.736 at 5e-5 in 2.1x
    the time."""

    epochs: float = 3.0
    batch_size: int = 32
    learning_rate: float = 1e-4
    method: str = "full"
    """``full`` (every weight) or ``lora`` (rank-``lora_rank`` adapters, merged before saving)."""
    max_query_tokens: int = 64
    max_passage_tokens: int = 256
    scale: float = 20.0
    """Multiplies the cosine similarities before the softmax (an inverse temperature)."""
    warmup_ratio: float = 0.1
    seed: int = 0
    lora_rank: int = 16

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be a finite number > 0, not {value}"
            for name, value in (
                ("epochs", self.epochs),
                ("learning_rate", self.learning_rate),
                ("scale", self.scale),
            )
            if not (math.isfinite(value) and value > 0)
        ]
        if self.batch_size < 2:
            problems.append(f"batch_size must be >= 2 (in-batch negatives), not {self.batch_size}")
        if self.method not in ("full", "lora"):
            problems.append(f"method must be full or lora, not {self.method!r}")
        if min(self.max_query_tokens, self.max_passage_tokens) < 3:
            problems.append("max_query_tokens and max_passage_tokens must be >= 3")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio must be in [0, 1), not {self.warmup_ratio}")
        if self.lora_rank < 1:
            problems.append(f"lora_rank must be >= 1, not {self.lora_rank}")
        if problems:
            raise UserError("invalid tuning settings: " + "; ".join(problems))


@dataclass(frozen=True)
class TuneStep:
    """One optimizer step, as reported to ``on_step``."""

    step: int
    total_steps: int
    loss: float
    epoch: float
    seconds: float
    """Since training started (loading the model excluded)."""


@dataclass(frozen=True)
class TuneResult:
    """What a tuning run did.

    ``final_loss`` is the mean of the last ``min(10, steps)`` step losses; ``seconds`` is the
    whole call (loading, training, saving); ``stopped`` means ``on_step`` returned False
    before the last step, and then nothing was written.
    """

    steps: int
    total_steps: int
    final_loss: float
    seconds: float
    method: str
    stopped: bool


def _batches(pairs: Sequence[Pair], size: int, rng: random.Random) -> list[list[int]]:
    """One epoch's batches in a shuffled order, no batch holding a text twice where that would
    make a false negative: a query twice (its other positive), or a positive that is another
    pair's positive or negative. A pair that does not fit waits for a later batch."""
    order = list(range(len(pairs)))
    rng.shuffle(order)
    batches = []
    while order:
        batch: list[int] = []
        queries: set[str] = set()
        positives: set[str] = set()
        negatives: set[str] = set()
        waiting = []
        for i in order:
            pair = pairs[i]
            if (
                len(batch) == size
                or pair.query in queries
                or pair.positive in positives
                or pair.positive in negatives
                or not positives.isdisjoint(pair.negatives)
            ):
                waiting.append(i)
                continue
            batch.append(i)
            queries.add(pair.query)
            positives.add(pair.positive)
            negatives.update(pair.negatives)
        batches.append(batch)
        order = waiting
    return batches


def _shuffler(seed: int, epoch: int) -> random.Random:
    return random.Random(seed * 1_000_003 + epoch)


def _factor(step: int, total: int, warmup: int) -> float:
    """Linear warmup to the full learning rate, then linear decay to zero."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (total - step) / max(1, total - warmup))


def _embed(model: Any, tokenizer: Any, texts: list[str], max_tokens: int, device: str) -> Any:
    """Mean-pooled, L2-normalised vectors, as sentence-transformers' Pooling + Normalize."""
    import torch.nn.functional as F

    batch = tokenizer(
        texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
    ).to(device)
    hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return F.normalize(pooled.float(), p=2, dim=1)


def _not_weights(folder: str, names: list[str]) -> set[str]:
    return {
        name
        for name in names
        if name.endswith(_WEIGHT_SUFFIXES)
        or (name in _WEIGHT_FOLDERS and os.path.isdir(os.path.join(folder, name)))
    }


def _write(source: Path, trained: dict[str, Any], prefix: str, out: Path) -> None:
    """``out`` as the source folder with the trained weights; built beside it, then renamed."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copytree(
            source, temp, ignore=_not_weights, copy_function=shutil.copyfile, dirs_exist_ok=True
        )
        temp.chmod(0o755)
        tensors: dict[str, Any] = {}
        used: set[str] = set()
        weights = source / "model.safetensors"
        with safe_open(str(weights), "pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (a safetensors handle is not a dict)
                kept = handle.get_tensor(name)
                own = name if name in trained else name.removeprefix(prefix)
                if own in trained:
                    used.add(own)
                    kept = trained[own].to(kept.dtype)
                # Buffers the model no longer keeps (position_ids) stay as the source had them.
                tensors[name] = kept.contiguous()
        lost = sorted(set(trained) - used)
        if lost:
            raise TrainingFailed(f"trained weights with no name in {weights}: {lost[:5]}")
        save_file(tensors, str(temp / "model.safetensors"), metadata={"format": "pt"})
        (temp / "model.safetensors").chmod(0o644)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(out, old)
            os.replace(temp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _load(source: Path, config: TuneConfig, device: str) -> tuple[Any, Any, str]:
    """The model to train, its tokenizer, and the prefix of its names in the source's files."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source))
    model = AutoModel.from_pretrained(str(source), dtype=torch.float32)
    prefix = f"{model.base_model_prefix}."
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_rank,
            lora_alpha=2 * config.lora_rank,
            lora_dropout=0.1,
            target_modules=_LORA_TARGETS,
        )
        model = get_peft_model(model, lora)
    model.train()  # dropout on, as sentence-transformers trains
    return model.to(device), tokenizer, prefix


def tune_embedder(
    source: Path,
    pairs: Sequence[Pair],
    out: Path,
    config: TuneConfig = TuneConfig(),
    on_step: Callable[[TuneStep], bool] | None = None,
) -> TuneResult:
    """Train the sentence-transformers model in ``source`` on ``pairs`` and save it to ``out``.

    Deterministic for a given seed on one machine: the batch order comes from the seed, and
    so do dropout and LoRA's initial weights. Runs on CUDA when torch sees a GPU (bfloat16
    autocast there), otherwise on every core torch uses.

    Args:
        source: A sentence-transformers folder with ``model.safetensors``.
        pairs: Training pairs; a passage appears at most once per batch.
        out: The folder to write (replaced if it exists), a complete sentence-transformers model.
        config: Hyperparameters.
        on_step: Called after every optimizer step; returning False (not merely a falsy
            value) stops training, and then ``out`` is not written.

    Returns:
        What was done; ``stopped`` is True when ``on_step`` stopped it.

    Raises:
        UserError: no pairs. PathError: ``source`` is not a model folder.
        TrainingFailed: the loss became NaN or infinite.
    """
    import torch

    started = time.perf_counter()
    source, out = Path(source), Path(out)
    if not pairs:
        raise UserError("no training pairs: give at least one (query, positive passage) pair")
    if not (source / "model.safetensors").is_file():
        raise PathError(f"{source} is not a model folder with a model.safetensors")
    # A pair's own positive listed among its negatives would be its own false negative.
    pairs = [
        Pair(p.query, p.positive, tuple(n for n in p.negatives if n != p.positive)) for p in pairs
    ]
    torch.manual_seed(config.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer, prefix = _load(source, config, device)
    per_epoch = len(_batches(pairs, config.batch_size, _shuffler(config.seed, 0)))
    total = max(1, math.ceil(config.epochs * per_epoch))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    # As sentence-transformers: no weight decay on biases and layer norms.
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for n, p in named if not _no_decay(n)], "weight_decay": 0.01},
            {"params": [p for n, p in named if _no_decay(n)], "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )
    warmup = int(total * config.warmup_ratio)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _factor(s, total, warmup))
    losses: list[float] = []
    stopped = False
    training = time.perf_counter()
    for step, (epoch, chosen) in zip(range(1, total + 1), _steps(pairs, config), strict=False):
        loss = _loss(model, tokenizer, chosen, config, device)
        if not torch.isfinite(loss):
            raise TrainingFailed(
                f"the loss became {loss.item()} at step {step}: lower learning_rate or scale"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.item()))
        info = TuneStep(step, total, losses[-1], epoch, time.perf_counter() - training)
        if on_step is not None and on_step(info) is False and step < total:
            stopped = True
            break
    if not stopped:
        if config.method == "lora":
            model = model.merge_and_unload()
        trained = {name: t.detach().cpu() for name, t in model.state_dict().items()}
        _write(source, trained, prefix, out)
    tail = losses[-10:]
    return TuneResult(
        steps=len(losses),
        total_steps=total,
        final_loss=sum(tail) / len(tail),
        seconds=time.perf_counter() - started,
        method=config.method,
        stopped=stopped,
    )


def _steps(pairs: list[Pair], config: TuneConfig) -> Iterator[tuple[float, list[Pair]]]:
    """Batches epoch after epoch, each with the (fractional) epoch it ends."""
    epoch = 0
    while True:
        batches = _batches(pairs, config.batch_size, _shuffler(config.seed, epoch))
        for number, batch in enumerate(batches, start=1):
            yield epoch + number / len(batches), [pairs[i] for i in batch]
        epoch += 1


def _loss(model: Any, tokenizer: Any, chosen: list[Pair], config: TuneConfig, device: str) -> Any:
    """Each query against every positive and hard negative of the batch; its own positive wins."""
    import torch

    passages = [p.positive for p in chosen] + [n for p in chosen for n in p.negatives]
    autocast = device == "cuda" and torch.cuda.is_bf16_supported()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        queries = _embed(
            model, tokenizer, [p.query for p in chosen], config.max_query_tokens, device
        )
        documents = _embed(model, tokenizer, passages, config.max_passage_tokens, device)
    scores = config.scale * queries @ documents.T
    return torch.nn.functional.cross_entropy(scores, torch.arange(len(chosen), device=device))


def _no_decay(name: str) -> bool:
    return name.endswith(".bias") or "LayerNorm" in name
