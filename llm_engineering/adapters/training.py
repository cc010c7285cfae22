"""QLoRA training: the base model, the data, and the loop. No knowledge of jobs or MCP.

The job worker runs :class:`QLoRATrainer`; the training benchmark compares it with a plain
transformers + peft loop over the same model and data (:func:`plain_training_loop`).

Base models: a GGUF (the default is the packaged SmolLM2) is read by transformers, which
dequantizes it; the result cannot be saved as is, so its weights are copied into a fresh
model of the same config and saved once per GGUF (by sha256) under the data folder.
Training then loads that copy with bitsandbytes NF4 quantization (double quantization,
bf16 compute), on CUDA when torch sees a GPU and on the CPU otherwise.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_engineering.adapters.datasets import Example
from llm_engineering.adapters.hyperparams import QLoRAConfig
from llm_engineering.errors import TrainingFailed

__all__ = [
    "Encoded",
    "QLoRATrainer",
    "StepInfo",
    "encode_examples",
    "is_gguf",
    "load_for_training",
    "plain_training_loop",
    "prepare_base",
    "torch_device",
]

log = logging.getLogger(__name__)


def torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def is_gguf(base: str) -> bool:
    from llm_engineering.packaged import PACKAGED_GGUF

    return base in PACKAGED_GGUF or base.endswith(".gguf")


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


def load_for_training(source: str, config: QLoRAConfig, device: str) -> tuple[Any, Any]:
    """The quantized base with fresh LoRA adapters on its linear layers, and its tokenizer."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    compute = getattr(torch, config.compute_dtype)
    quantization = (
        BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=config.quant_type,
            bnb_4bit_use_double_quant=config.double_quant,
            bnb_4bit_compute_dtype=compute,
        )
        if config.load_in_4bit
        else None
    )
    model = AutoModelForCausalLM.from_pretrained(
        source, quantization_config=quantization, dtype=compute, device_map={"": device}
    )
    if config.load_in_4bit:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.gradient_checkpointing
        )
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    lora = LoraConfig(
        r=config.r,
        lora_alpha=config.lora_alpha,  # type: ignore[arg-type]  # peft accepts a float
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return peft_model, tokenizer


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    """-100 where no loss is taken (the prompt, and padding)."""


def encode_examples(
    examples: Sequence[Example], tokenizer: Any, max_len: int, completion_only: bool
) -> list[Encoded]:
    """Token ids with labels, using the tokenizer's chat template.

    With ``completion_only``, only the assistant turns (and their end-of-turn token) carry
    loss: each turn's span is found by rendering the conversation up to it.
    """
    encoded = []
    for example in examples:
        if not example.messages:
            ids = tokenizer(example.text, add_special_tokens=True)["input_ids"][:max_len]
            encoded.append(Encoded(ids, list(ids)))
            continue
        ids = _chat_ids(tokenizer, example.messages, add_generation_prompt=False)
        labels = [-100] * len(ids) if completion_only else list(ids)
        if completion_only:
            for i, message in enumerate(example.messages):
                if message["role"] != "assistant":
                    continue
                start = len(_chat_ids(tokenizer, example.messages[:i], add_generation_prompt=True))
                end = len(
                    _chat_ids(tokenizer, example.messages[: i + 1], add_generation_prompt=False)
                )
                labels[start:end] = ids[start:end]
        ids, labels = ids[:max_len], labels[:max_len]
        if all(label == -100 for label in labels):
            raise TrainingFailed(
                f"example on line {example.line} leaves no assistant tokens within max_seq_len={max_len}; "
                "raise max_seq_len or shorten the prompt"
            )
        encoded.append(Encoded(ids, labels))
    return encoded


def _chat_ids(
    tokenizer: Any, messages: Sequence[dict[str, str]], add_generation_prompt: bool
) -> list[int]:
    text = tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _batch(items: Sequence[Encoded], pad_id: int, device: str) -> dict[str, Any]:
    import torch

    width = max(len(item.input_ids) for item in items)
    ids = [item.input_ids + [pad_id] * (width - len(item.input_ids)) for item in items]
    labels = [item.labels + [-100] * (width - len(item.labels)) for item in items]
    mask = [[1] * len(item.input_ids) + [0] * (width - len(item.input_ids)) for item in items]
    return {
        "input_ids": torch.tensor(ids, device=device),
        "attention_mask": torch.tensor(mask, device=device),
        "labels": torch.tensor(labels, device=device),
    }


def _order(count: int, epoch: int, seed: int) -> list[int]:
    order = list(range(count))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


@dataclass
class StepInfo:
    step: int
    total: int
    loss: float
    learning_rate: float
    tokens: int
    tokens_per_s: float
    elapsed_s: float
    eta_s: float


class QLoRATrainer:
    """The training loop of a job: deterministic data order, checkpoints, resumable.

    Args:
        model: A peft model (from :func:`load_for_training`).
        data: Encoded examples.
        config: Hyperparameters.
        pad_id: Padding token id.
        device: ``cuda`` or ``cpu``.
    """

    def __init__(
        self, model: Any, data: Sequence[Encoded], config: QLoRAConfig, pad_id: int, device: str
    ):
        import torch
        from transformers import get_scheduler

        self.model = model
        self.data = list(data)
        self.config = config
        self.pad_id = pad_id
        self.device = device
        micro_per_epoch = math.ceil(len(self.data) / config.batch_size)
        self.steps_per_epoch = max(1, math.ceil(micro_per_epoch / config.gradient_accumulation))
        self.total_steps = config.max_steps or math.ceil(self.steps_per_epoch * config.epochs)
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.trainable, lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.scheduler = get_scheduler(
            config.lr_scheduler,
            self.optimizer,
            num_warmup_steps=round(config.warmup_ratio * self.total_steps),
            num_training_steps=self.total_steps,
        )
        self.step = 0
        self.losses: list[float] = []
        self.tokens = 0
        self.trained_s = 0.0
        """Seconds spent training, over every run of this job (checkpoints carry it)."""
        torch.manual_seed(config.seed)

    def _micro_batches(self, step: int) -> list[list[Encoded]]:
        """The micro-batches of optimizer step ``step`` (0-based): fixed by the seed, so a
        resumed job sees exactly the batches the interrupted one would have."""
        size, accumulation = self.config.batch_size, self.config.gradient_accumulation
        micro_per_epoch = math.ceil(len(self.data) / size)
        batches = []
        for k in range(accumulation):
            index = step * accumulation + k
            epoch, position = divmod(index, micro_per_epoch)
            order = _order(len(self.data), epoch, self.config.seed)
            batches.append([self.data[i] for i in order[position * size : (position + 1) * size]])
        return [b for b in batches if b]

    def train_step(self) -> tuple[float, int]:
        """One optimizer step. Returns (mean loss, tokens seen)."""
        import torch

        self.model.train()
        batches = self._micro_batches(self.step)
        total_loss, tokens = 0.0, 0
        for items in batches:
            batch = _batch(items, self.pad_id, self.device)
            loss = self.model(**batch).loss / len(batches)
            loss.backward()
            total_loss += float(loss.detach())
            tokens += int(batch["attention_mask"].sum())
        if self.config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return total_loss, tokens

    def run(
        self, on_step: Callable[[StepInfo], bool] | None = None, deadline: float | None = None
    ) -> str:
        """Train until done, stopped by ``on_step`` returning False, or past ``deadline``.

        Returns:
            ``done``, ``stopped`` or ``budget``.

        Raises:
            TrainingFailed: the loss became NaN or exceeded ``exploding_loss``.
        """
        started = time.perf_counter()
        trained_before = self.trained_s
        start_step = self.step
        run_tokens = 0
        while self.step < self.total_steps:
            learning_rate = self.scheduler.get_last_lr()[0]
            loss, tokens = self.train_step()
            self.tokens += tokens
            run_tokens += tokens
            if not math.isfinite(loss):
                raise TrainingFailed(
                    f"the loss became {loss} at step {self.step}; lower learning_rate"
                )
            if loss > self.config.exploding_loss:
                raise TrainingFailed(
                    f"the loss exploded to {loss:.1f} at step {self.step} (limit exploding_loss="
                    f"{self.config.exploding_loss:g}); lower learning_rate"
                )
            self.losses.append(loss)
            elapsed = time.perf_counter() - started
            self.trained_s = trained_before + elapsed
            done = self.step - start_step
            per_step = elapsed / done
            info = StepInfo(
                step=self.step,
                total=self.total_steps,
                loss=loss,
                learning_rate=learning_rate,
                tokens=tokens,
                tokens_per_s=run_tokens / elapsed if elapsed > 0 else 0.0,
                elapsed_s=elapsed,
                eta_s=per_step * (self.total_steps - self.step),
            )
            if on_step is not None and not on_step(info):
                return "stopped"
            if (
                deadline is not None
                and time.monotonic() >= deadline
                and self.step < self.total_steps
            ):
                return "budget"
        return "done"

    # -- checkpoints -------------------------------------------------------------------

    def save_checkpoint(self, folder: Path) -> None:
        """Adapter weights, optimizer, scheduler, step and losses; written whole or not at all."""
        import torch
        from peft import get_peft_model_state_dict

        staging = folder.with_name(folder.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        torch.save(
            {
                "adapter": get_peft_model_state_dict(self.model),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "step": self.step,
                "losses": self.losses,
                "tokens": self.tokens,
                "trained_s": self.trained_s,
                "torch_rng": torch.get_rng_state(),
            },
            staging / "state.pt",
        )
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)

    def load_checkpoint(self, folder: Path) -> None:
        import torch
        from peft import set_peft_model_state_dict

        state = torch.load(folder / "state.pt", map_location=self.device, weights_only=False)
        set_peft_model_state_dict(self.model, state["adapter"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.losses = list(state["losses"])
        self.tokens = int(state["tokens"])
        self.trained_s = float(state.get("trained_s", 0.0))
        torch.set_rng_state(state["torch_rng"])


def plain_training_loop(
    model: Any, data: Sequence[Encoded], config: QLoRAConfig, pad_id: int, device: str, steps: int
) -> tuple[float, int]:
    """The baseline: the textbook transformers + peft loop, nothing around it.

    Returns:
        (seconds, tokens) for ``steps`` optimizer steps.
    """
    import torch
    from transformers import get_scheduler

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate)
    scheduler = get_scheduler(
        config.lr_scheduler, optimizer, num_warmup_steps=0, num_training_steps=steps
    )
    model.train()
    tokens = 0
    started = time.perf_counter()
    size = config.batch_size
    for step in range(steps):
        start = (step * size) % len(data)
        items = [data[(start + i) % len(data)] for i in range(size)]
        batch = _batch(items, pad_id, device)
        model(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    return time.perf_counter() - started, tokens
