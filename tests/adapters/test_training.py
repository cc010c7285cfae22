"""The training loop on a tiny random Llama: loss masking, exact resume, NaN and exploding losses."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_engineering.adapters.datasets import Example
from llm_engineering.adapters.encoding import encode_examples
from llm_engineering.adapters.hyperparams import QLoRAConfig
from llm_engineering.adapters.lora_model import load_for_training
from llm_engineering.adapters.trainer import QLoRATrainer
from llm_engineering.errors import TrainingFailed

CHAT = Example(
    messages=[
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Colour of the sky?"},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "And grass?"},
        {"role": "assistant", "content": "Green."},
    ],
    line=1,
)


def examples(count: int = 12) -> list[Example]:
    return [
        Example(
            messages=[
                {"role": "user", "content": f"What is {i} plus {i}?"},
                {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."},
            ],
            line=i + 1,
        )
        for i in range(count)
    ]


def config(**values: object) -> QLoRAConfig:
    base = {"max_steps": 4, "batch_size": 4, "learning_rate": 1e-2, "checkpoint_every": 2}
    return QLoRAConfig.from_dict({**base, **values})


def test_only_the_assistant_turns_carry_loss_with_their_end_of_turn_token(tiny_llama: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama))
    [encoded] = encode_examples([CHAT], tokenizer, 512, completion_only=True)
    learned = tokenizer.decode(
        [t for t, label in zip(encoded.input_ids, encoded.labels, strict=True) if label != -100]
    )
    assert learned == "Blue.<|im_end|>\nGreen.<|im_end|>\n"
    [everything] = encode_examples([CHAT], tokenizer, 512, completion_only=False)
    assert everything.labels == everything.input_ids
    [text] = encode_examples([Example(text="Plain words.")], tokenizer, 512, completion_only=True)
    assert text.labels == text.input_ids


def test_an_example_whose_answer_falls_beyond_max_seq_len_is_reported_by_line(
    tiny_llama: Path,
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama))
    with pytest.raises(TrainingFailed, match="line 1 leaves no assistant tokens"):
        encode_examples([CHAT], tokenizer, 16, completion_only=True)


def trainer_for(source: Path, settings: QLoRAConfig) -> QLoRATrainer:
    import torch

    torch.manual_seed(0)  # the LoRA matrices start from the same random values each time
    model, tokenizer = load_for_training(str(source), settings, "cpu")
    data = encode_examples(examples(), tokenizer, 128, completion_only=True)
    return QLoRATrainer(model, data, settings, pad_id=tokenizer.pad_token_id, device="cpu")


@pytest.mark.parametrize("quantized", [False, True], ids=["bf16", "nf4"])
def test_a_resumed_run_continues_exactly_where_the_checkpoint_left_off(
    tiny_llama: Path, tmp_path: Path, quantized: bool
) -> None:
    settings = config(load_in_4bit=quantized, compute_dtype="float32")
    straight = trainer_for(tiny_llama, settings)
    assert straight.run() == "done"
    assert len(straight.losses) == 4 and straight.losses[-1] < straight.losses[0]

    first = trainer_for(tiny_llama, settings)
    assert first.run(on_step=lambda info: info.step < 2) == "stopped"
    first.save_checkpoint(tmp_path / "last")
    resumed = trainer_for(tiny_llama, settings)
    resumed.load_checkpoint(tmp_path / "last")
    assert resumed.step == 2 and resumed.trained_s == first.trained_s > 0
    assert resumed.run() == "done"
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-4)


def test_an_exploding_or_nan_loss_fails_with_the_reason(tiny_llama: Path) -> None:
    import torch

    exploding = trainer_for(tiny_llama, config(exploding_loss=0.5, load_in_4bit=False))
    with pytest.raises(TrainingFailed, match=r"exploded to .* at step 1 .*exploding_loss=0.5"):
        exploding.run()

    broken = trainer_for(tiny_llama, config(load_in_4bit=False))
    with torch.no_grad():
        for name, parameter in broken.model.named_parameters():
            if "lora_A" in name:
                parameter.fill_(float("nan"))
    with pytest.raises(TrainingFailed, match="became nan at step 1; lower learning_rate"):
        broken.run()


def test_a_held_out_loss_or_answers_between_steps_do_not_stop_the_learning(
    tiny_llama: Path,
) -> None:
    """bitsandbytes repacks a 4-bit weight for its CPU inference kernel the first time the
    layer runs in eval mode without gradients, and training after that stopped learning
    (the loss of the default model went 2.84 -> 1.51 in 10 steps instead of -> 0.26): a job
    with eval_every, or one that answers before it trains, must train as one that does not."""
    import torch

    from llm_engineering.adapters.heldout import eval_loss
    from llm_engineering.adapters.kept import generate

    settings = config(max_steps=6, load_in_4bit=True, compute_dtype="bfloat16")
    straight = trainer_for(tiny_llama, settings)
    assert straight.run() == "done"

    checked = trainer_for(tiny_llama, settings)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama))
    generate(
        checked.model, tokenizer, [[{"role": "user", "content": "What is 2 plus 2?"}]], "cpu", 4
    )

    def evaluate(info: object) -> bool:
        eval_loss(checked.model, checked.data[:4], tokenizer.pad_token_id, "cpu", 4)
        return True

    assert checked.run(on_step=evaluate) == "done"
    assert checked.losses == pytest.approx(straight.losses, rel=1e-3)
    assert torch.isfinite(torch.tensor(checked.losses)).all()


def test_replayed_examples_are_pulled_toward_the_bases_distribution(tiny_llama: Path) -> None:
    """While the adapter adds nothing the pull is zero (the loss is the tokens' loss); once it
    has learned, the replayed examples' loss carries the divergence from the base as well."""
    from llm_engineering.adapters.encoding import pad_batch

    trainer = trainer_for(tiny_llama, config(max_steps=4, load_in_4bit=False))
    for item in trainer.data[::2]:
        item.anchored = True
    items = trainer._micro_batches(0)[0]
    assert any(item.anchored for item in items)

    def losses() -> tuple[float, float]:
        import torch

        batch = pad_batch(items, trainer.pad_id, "cpu")
        trainer.model.eval()
        with torch.no_grad():
            return float(trainer.model(**batch).loss), float(trainer._anchored_loss(items, batch))

    plain, anchored = losses()
    assert anchored == pytest.approx(plain, rel=1e-4)
    assert trainer.run() == "done"
    plain, anchored = losses()
    assert anchored > plain  # the divergence is never negative, and now above zero
