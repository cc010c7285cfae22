"""The training loop of a job: deterministic data order, checkpoints, resumable.

No knowledge of jobs or MCP: the worker (:mod:`llm_engineering.adapters.worker`) drives it
and turns its step reports into events.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_engineering.adapters.encoding import Encoded, pad_batch
from llm_engineering.adapters.hyperparams import QLoRAConfig
from llm_engineering.errors import TrainingFailed

__all__ = ["QLoRATrainer", "StepInfo"]


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
        self,
        model: Any,
        data: Sequence[Encoded],
        config: QLoRAConfig,
        *,
        pad_id: int,
        device: str,
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
            batch = pad_batch(items, self.pad_id, self.device)
            if self.config.replay_kl and any(item.anchored for item in items):
                loss = self._anchored_loss(items, batch) / len(batches)
            else:
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

    def _anchored_loss(self, items: Sequence[Encoded], batch: dict[str, Any]) -> Any:
        """Cross-entropy on every labelled token, plus ``replay_kl`` times the KL divergence
        from the base's next-token distribution on the anchored (replayed) examples' tokens,
        both per labelled token (what the weight does: ``QLoRAConfig.replay_kl``)."""
        import torch
        import torch.nn.functional as F

        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        logits = self.model(**inputs).logits[:, :-1].float()
        labels = batch["labels"][:, 1:]
        counted = labels != -100
        entropy = F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
        rows = torch.tensor([item.anchored for item in items], device=labels.device)
        with torch.no_grad(), self.model.disable_adapter():
            base = self.model(**inputs).logits[:, :-1].float().log_softmax(-1)
        divergence = (base.exp() * (base - logits.log_softmax(-1))).sum(-1)
        anchored = counted & rows[:, None]
        total = (entropy * counted).sum() + self.config.replay_kl * (divergence * anchored).sum()
        return total / counted.sum().clamp(min=1)

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
