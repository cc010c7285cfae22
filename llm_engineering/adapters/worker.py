"""One training job in its own process: ``python -m llm_engineering.adapters.worker JOB_DIR``.

The worker reads its job folder's spec and examples
(:class:`~llm_engineering.adapters.job_folder.JobFolder`), appends to its events, saves a
checkpoint every ``checkpoint_every`` steps and, when it ends, writes its result with a
status: ``succeeded`` (the adapter is in the folder), ``failed`` (with the reason),
``cancelled`` (a cancel was asked for) or ``interrupted`` (SIGTERM or SIGINT, or the process
that started it went away: it saves a checkpoint first, so the job resumes where it
stopped). Nothing here touches ``state.sqlite``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from llm_engineering.adapters.datasets import Example
from llm_engineering.adapters.events import EventLog
from llm_engineering.adapters.job_folder import JobFolder
from llm_engineering.adapters.records import JobResult, JobSpec
from llm_engineering.errors import ExportError, TrainingFailed

__all__ = ["main"]

log = logging.getLogger("llm_engineering.worker")


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("llm-engineering", "torch", "transformers", "peft", "bitsandbytes", "gguf"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class _Stop:
    """Why training should stop early: set by signals, the parent watch or a cancel."""

    def __init__(self, folder: JobFolder):
        self.folder = folder
        self.reason: str | None = None
        self.event = threading.Event()

    def interrupt(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.event.set()

    @property
    def cancelled(self) -> bool:
        return self.folder.cancelled

    def stopping(self) -> bool:
        """Whether to stop now (a signal, the server gone, or a cancel)."""
        if self.cancelled:
            self.interrupt("cancelled")
        return self.event.is_set()


def _watch_parent(stop: _Stop, parent: int) -> None:
    # Reparenting (the server died, even by kill -9) changes getppid(): stop, keeping a
    # checkpoint, so the restarted server resumes the job rather than two copies training.
    # A cancel is seen here too, so one that arrives while the model loads stops the job
    # between loading stages rather than after them.
    while not stop.event.wait(0.5):
        if stop.cancelled:
            stop.interrupt("cancelled")
            return
        if os.getppid() != parent:
            stop.interrupt("the server that started this job exited")
            return


def train(folder: JobFolder, spec: JobSpec, events: EventLog, stop: _Stop) -> JobResult:
    from llm_engineering.adapters.base_model import prepare_base
    from llm_engineering.adapters.defaults import choose, steps_per_epoch
    from llm_engineering.adapters.encoding import encode_examples
    from llm_engineering.adapters.heldout import answer_check, eval_loss, verdict
    from llm_engineering.adapters.kept import (
        BaseAnswers,
        answers_folder,
        kept_note,
        replay_examples,
    )
    from llm_engineering.adapters.lora_model import load_for_training, torch_device
    from llm_engineering.adapters.trainer import QLoRATrainer, StepInfo

    started = time.perf_counter()
    config = spec.hyperparameters
    events.emit("loading", base_model=spec.base_model)
    source, gguf, digest = prepare_base(spec.base_model, Path(spec.base_cache))
    if stop.stopping():
        return JobResult("interrupted", step=0, reason=stop.reason)
    device = torch_device()
    model, tokenizer = load_for_training(source, config, device)
    if stop.stopping():
        return JobResult("interrupted", step=0, reason=stop.reason)
    examples = folder.examples()
    held = folder.heldout()
    chosen: dict[str, str] = {}
    if spec.given is not None:
        choice = choose(
            config, spec.given, parameters=base_parameters(model), examples=len(examples)
        )
        config, chosen = choice.config, choice.chosen
        events.emit("chosen", hyperparameters=config.to_dict(), chosen=chosen)
    general: BaseAnswers | None = None
    if config.kept_prompts or config.replay_examples:
        # Before any training or checkpoint: a fresh LoRA adds nothing, so this is the base.
        events.emit("general", stage="the base's answers to the general prompts")
        general = BaseAnswers.of(
            model,
            tokenizer,
            device,
            answers_folder(Path(spec.base_cache), source, digest),
            spec.system_prompt,
            f"{device} {config.load_in_4bit and config.quant_type} {config.compute_dtype}",
        )
    replay = (
        replay_examples(general.replay, spec.system_prompt, config.replay_examples)
        if general
        else []
    )
    data = encode_examples(
        [*examples, *replay], tokenizer, config.max_seq_len, config.completion_only
    )
    for item in data[len(examples) :]:
        item.anchored = True
    held_data = encode_examples(held, tokenizer, config.max_seq_len, config.completion_only)
    trainer = QLoRATrainer(model, data, config, pad_id=tokenizer.pad_token_id, device=device)
    eval_losses: list[tuple[int, float]] = []

    def held_out_loss(step: int) -> None:
        if held_data:
            loss = eval_loss(model, held_data, tokenizer.pad_token_id, device, config.batch_size)
            eval_losses.append((step, round(loss, 5)))
            events.emit("eval", step=step, eval_loss=round(loss, 5))

    checkpoint = folder.checkpoint
    if (checkpoint / "state.pt").is_file():
        trainer.load_checkpoint(checkpoint)
        events.emit("resumed", step=trainer.step, total=trainer.total_steps)
    events.emit(
        "started",
        step=trainer.step,
        total=trainer.total_steps,
        device=device,
        examples=len(data),
        replayed=len(replay),
        tokens_per_epoch=sum(len(item.input_ids) for item in data),
        # With the tokens, the characters they came from: how the next job on this base
        # estimates its time before it is queued (adapters/estimate.py).
        chars_per_epoch=sum(example.chars for example in [*examples, *replay]),
        load_s=round(time.perf_counter() - started, 2),
    )
    # The budget covers the whole job: a resumed run gets what the earlier ones left.
    deadline = (
        time.monotonic() + max(0.0, config.max_minutes * 60 - trainer.trained_s)
        if config.max_minutes
        else None
    )
    first_step_s: list[float] = []

    def on_step(info: StepInfo) -> bool:
        if not first_step_s:
            first_step_s.append(round(time.perf_counter() - started, 2))
        events.emit(
            "step",
            step=info.step,
            total=info.total,
            loss=round(info.loss, 5),
            learning_rate=info.learning_rate,
            tokens=info.tokens,
            tokens_per_s=round(info.tokens_per_s, 2),
            elapsed_s=round(info.elapsed_s, 2),
            eta_s=round(info.eta_s, 1),
        )
        if stop.cancelled:
            return False
        if config.eval_every and info.step % config.eval_every == 0 and info.step < info.total:
            held_out_loss(info.step)
        if stop.event.is_set() or info.step % config.checkpoint_every == 0:
            trainer.save_checkpoint(checkpoint)
            events.emit("checkpoint", step=info.step)
        return not stop.event.is_set()

    if stop.cancelled:
        return JobResult("cancelled", step=trainer.step)
    outcome = trainer.run(on_step, deadline)
    if outcome == "stopped":
        if stop.cancelled:
            return JobResult("cancelled", step=trainer.step)
        return JobResult("interrupted", step=trainer.step, reason=stop.reason)

    events.emit("saving", step=trainer.step)
    model.save_pretrained(str(folder.peft))
    losses = trainer.losses
    # An epoch of the user's examples (the replayed ones ride along and keep a low loss).
    window = max(1, min(len(losses), steps_per_epoch(len(examples), config)))
    result = JobResult(
        "succeeded",
        step=trainer.step,
        total=trainer.total_steps,
        budget_reached=outcome == "budget",
        first_loss=_mean(losses[:window]),
        final_loss=_mean(losses[-window:]),
        best_loss=min(losses) if losses else None,
        train_tokens=trainer.tokens,
        device=device,
        base_source=source,
        base_gguf=str(gguf) if gguf else "",
        base_gguf_sha256=digest or "",
        seconds=round(time.perf_counter() - started, 2),
        time_to_first_step_s=first_step_s[0] if first_step_s else None,
        peak_rss_mib=_peak_rss_mib(),
        libraries=library_versions(),
        hyperparameters=config.to_dict(),
        chosen=chosen,
        replayed=len(replay),
    )
    events.emit("checking", step=trainer.step, heldout=len(held))
    held_out_loss(trainer.step)
    result.eval_loss = eval_losses[-1][1] if eval_losses else None
    limit = config.eval_max_answers
    checks = {
        "heldout": answer_check(model, tokenizer, held, device, limit) if held else None,
        "train": answer_check(model, tokenizer, examples, device, min(limit, max(len(held), 8))),
    }  # fmt: skip
    result.answer_check = {k: v.to_dict() for k, v in checks.items() if v is not None}
    result.verdict = verdict(checks["heldout"], checks["train"])
    events.emit(
        "answer_check",
        **{k: {"f1": v.f1, "exact": v.exact, "prompts": v.prompts} for k, v in checks.items() if v},
        verdict=result.verdict,
    )
    if general and config.kept_prompts:
        answers = map(_answer, [*examples, *held])
        kept = general.check_adapter(model, tokenizer, device, answers, config.kept_prompts)
        result.kept_check = kept.to_dict()
        result.kept_note = kept_note(kept, config.learning_rate, len(replay))
        events.emit(
            "kept_check",
            kept=round(kept.kept, 4),
            leaked=round(kept.leaked, 4),
            prompts=kept.prompts,
            note=result.kept_note,
        )
    try:
        import torch

        if device == "cuda":
            result.peak_gpu_mib = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    except Exception:
        pass
    if gguf is not None:
        from llm_engineering.adapters.export import export_gguf_lora

        base_config = json.loads((Path(source) / "config.json").read_text())
        try:
            result.export = export_gguf_lora(folder.peft, folder.gguf, base_config)
        except ExportError as exc:
            result.gguf_error = str(exc)
    else:
        result.gguf_error = (
            f"the base {spec.base_model!r} is not a GGUF model, so there is no llama.cpp "
            "base to serve this adapter on; the peft adapter is kept"
        )
    if losses:
        from llm_engineering.adapters.plot import write_loss_plot

        title = f"{spec.name} (job {folder.id})"
        write_loss_plot(losses, folder.loss_plot_file, title, eval_losses)
    return result


def share_cores() -> None:
    """Take the priority and thread count the runner set (``train_nice``, ``train_threads``)."""
    from llm_engineering.adapters.job_runner import WORKER_NICE, WORKER_THREADS

    nice = int(os.environ.get(WORKER_NICE, "0") or 0)
    if nice:
        try:
            os.nice(nice)
        except OSError as exc:  # not allowed here: train at the server's priority
            log.warning("could not lower the worker's priority: %s", exc)
    threads = int(os.environ.get(WORKER_THREADS, "0") or 0)
    if threads:
        import torch

        torch.set_num_threads(threads)


def base_parameters(model: Any) -> int:
    """Parameters of the base under the LoRA layers (4-bit ones counted at full shape)."""
    total = 0
    for parameter in model.parameters():
        if parameter.requires_grad:
            continue  # LoRA's own
        shape = getattr(getattr(parameter, "quant_state", None), "shape", None)
        total += math.prod(shape) if shape is not None else parameter.numel()
    return int(total)


def _answer(example: Example) -> str:
    """What the example teaches the model to say: its last turn, or its text."""
    return example.messages[-1]["content"] if example.messages else example.text


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return round(sum(finite) / len(finite), 5) if finite else None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m llm_engineering.adapters.worker JOB_DIR", file=sys.stderr)
        return 2
    folder = JobFolder(Path(args[0]))
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    share_cores()
    stop = _Stop(folder)
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda signum, _frame: stop.interrupt(f"signal {signum}"))
    threading.Thread(target=_watch_parent, args=(stop, os.getppid()), daemon=True).start()
    events = folder.event_log()
    events.emit("worker", pid=os.getpid())
    try:
        # Read inside the try: hyperparameters this version refuses fail the job.
        result = train(folder, folder.spec(), events, stop)
    except TrainingFailed as exc:
        result = JobResult("failed", error=str(exc))
    except Exception as exc:
        traceback.print_exc()
        why = f"{type(exc).__name__}: {exc} (see {JobFolder.WORKER_LOG})"
        result = JobResult("failed", error=why)
    if result.status == "interrupted" and stop.cancelled:
        # Cancelled while it was stopping for another reason, or while loading: the user's
        # cancel wins, so the job ends cancelled rather than being resumed.
        result = JobResult("cancelled", step=result.step)
    if result.peak_rss_mib is None:
        result.peak_rss_mib = _peak_rss_mib()
    events.emit("finished", status=result.status, error=result.error)
    events.close()
    folder.write_result(result)
    stop.event.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
