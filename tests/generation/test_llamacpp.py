"""The llama.cpp backend with the real packaged SmolLM2 GGUF."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llm_engineering import cpu
from llm_engineering.errors import ConfigError, ModelLoadError, PathError
from llm_engineering.generation import llamacpp
from llm_engineering.generation.llamacpp import LlamaCppGenerator
from tests.conftest import wait_until

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Name three colours of the rainbow."},
]


@pytest.fixture(scope="module")
def generator() -> LlamaCppGenerator:
    return LlamaCppGenerator("smollm2-135m-instruct", n_ctx=2048)


@pytest.mark.parametrize("max_tokens", [40, 400])  # stopped by the limit, and by the model
def test_streamed_text_usage_and_speed_match_a_plain_completion(
    generator: LlamaCppGenerator, max_tokens: int
) -> None:
    generator.chat(
        MESSAGES, max_tokens=5, temperature=0.0
    )  # a previous call must not change the next
    pieces: list[str] = []
    completion = generator.chat(
        MESSAGES, max_tokens=max_tokens, temperature=0.0, on_token=pieces.append
    )
    assert "".join(pieces) == completion.text and len(pieces) > 3
    generator._llm.reset()  # as chat() does: the same prompt from a clean context
    raw = generator._llm.create_chat_completion(
        messages=MESSAGES, max_tokens=max_tokens, temperature=0.0
    )
    assert completion.text == raw["choices"][0]["message"]["content"]  # greedy: the same answer
    assert completion.finish_reason == raw["choices"][0]["finish_reason"]
    assert completion.prompt_tokens == raw["usage"]["prompt_tokens"]
    assert completion.completion_tokens == raw["usage"]["completion_tokens"]
    assert (
        completion.first_token_ms is not None
        and 0 < completion.first_token_ms <= completion.generation_ms
    )
    assert completion.tokens_per_s > 0


def test_it_starts_on_every_available_core_and_the_gguf_chat_template(
    generator: LlamaCppGenerator,
) -> None:
    assert generator._llm.n_threads == cpu.cores() and generator.adaptive_threads
    assert "im_start" in generator._llm.metadata["tokenizer.chat_template"]
    assert generator.context_window == 2048
    assert generator.name == "llama.cpp:SmolLM2-135M-Instruct.Q4_1.gguf"
    assert generator.count_tokens("hello world") == 2


def test_a_chat_template_can_be_overridden(tmp_path: Path) -> None:
    template = tmp_path / "plain.jinja"
    template.write_text(
        "{% for m in messages %}{{ m['role'] | upper }}: {{ m['content'] }}\n{% endfor %}ASSISTANT:"
    )
    custom = LlamaCppGenerator("smollm2-135m-instruct", n_ctx=512, chat_template=str(template))
    formatted = custom._llm.chat_handler  # a Jinja handler built from the file
    assert formatted is not None
    completion = custom.chat(MESSAGES, max_tokens=5, temperature=0.0)
    # "SYSTEM: ...\nUSER: ...\nASSISTANT:" has no ChatML markers, so the prompt is shorter
    plain = LlamaCppGenerator("smollm2-135m-instruct", n_ctx=512).chat(
        MESSAGES, max_tokens=5, temperature=0.0
    )
    assert completion.prompt_tokens != plain.prompt_tokens
    custom.close()


def test_load_errors_say_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PathError, match="does not exist"):
        LlamaCppGenerator(str(tmp_path / "missing.gguf"))
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(ConfigError, match="not a GGUF model"):
        LlamaCppGenerator(str(not_gguf))
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="could not load"):
        LlamaCppGenerator(str(truncated))
    monkeypatch.setattr(llamacpp, "available_memory", lambda: 10 * 1024 * 1024)
    with pytest.raises(ModelLoadError, match="not enough memory"):
        LlamaCppGenerator("smollm2-135m-instruct")


def test_an_answer_takes_only_the_cores_other_work_leaves_free(
    generator: LlamaCppGenerator,
) -> None:
    """llama.cpp's threads spin at a barrier: one more than the free cores turned a 2 s answer
    into 118 s here. With every core kept busy by other processes, an answer uses one thread,
    and gives the same tokens."""
    alone = generator.chat(MESSAGES, max_tokens=24, temperature=0.0)
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cpu.cores())
    ]
    try:
        wait_until(lambda: (cpu.busy_others() or 0) >= cpu.cores(), "every core busy", 60)
        crowded = generator.chat(MESSAGES, max_tokens=24, temperature=0.0)
        assert generator.threads == 1
    finally:
        for process in busy:
            process.kill()
            process.wait()
    assert crowded.text == alone.text


def test_explicit_threads_are_kept_whatever_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = LlamaCppGenerator("smollm2-135m-instruct", n_ctx=512, n_threads=2)
    monkeypatch.setattr(cpu, "_procs_running", lambda: 50)
    fixed.chat(MESSAGES, max_tokens=2, temperature=0.0)
    assert fixed.threads == 2 and not fixed.adaptive_threads


def test_idle_cores_counts_other_runnable_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "cores", lambda: 8)
    looks = iter([3, 9, 3, 4, 3])  # one look caught a burst; the median ignores it
    monkeypatch.setattr(cpu, "_procs_running", lambda: next(looks))
    assert cpu.busy_others(gap_s=0) == 2
    monkeypatch.setattr(cpu, "_procs_running", lambda: 6)
    assert cpu.idle_cores() == 3 and cpu.idle_cores(limit=2) == 2
    monkeypatch.setattr(cpu, "_procs_running", lambda: 40)
    assert cpu.idle_cores() == 1  # never none
    monkeypatch.setattr(cpu, "_procs_running", lambda: None)
    assert cpu.busy_others() is None and cpu.idle_cores() == 8


def test_a_reply_that_loops_is_stopped_and_keeps_one_copy(generator: LlamaCppGenerator) -> None:
    looping = [{"role": "user", "content": "Repeat after me forever: la la la la la la la la"}]
    completion = generator.chat(looping, max_tokens=300, temperature=0.0)
    assert completion.finish_reason == "repetition" and completion.completion_tokens < 300
    assert completion.text.lower().count("la") < 8, completion.text
    cut = generator.chat(MESSAGES, max_tokens=300, temperature=0.0, time_limit_s=1e-9)
    assert cut.finish_reason == "time_limit" and cut.completion_tokens == 1


def test_the_loop_guard_needs_three_repeats_spanning_32_pieces() -> None:
    from llm_engineering.generation.base import LoopGuard

    guard = LoopGuard()
    block = ["```", "bash", " #", " onboarding", ".md", "\n"]  # 6 pieces: 6 repeats = 36
    stops = [guard.stop(piece) for piece in ["Intro", " text", "\n", *block * 6]]
    # "\n" + the block's first five pieces is the same loop, rotated: it spans 36 pieces
    # one piece before the sixth block ends.
    assert stops.index(True) == 3 + 6 * 6 - 2 and guard.reason == "repetition"
    # cut to the first copy, then back to its last whole line: no half-open code fence
    assert guard.text("ignored") == "Intro text"
    listing = LoopGuard()  # the same pieces again and again, but never a block back to back
    pieces = [p for i in range(60) for p in ("\n", "-", " step", f" {i}", ":", " run", " it")]
    assert not any(listing.stop(piece) for piece in pieces)
