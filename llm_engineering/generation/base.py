"""The generator interface: chat messages in, streamed text and usage out."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

__all__ = [
    "STOPPED",
    "Availability",
    "Completion",
    "Generator",
    "LoopGuard",
    "Message",
    "ServedAdapter",
    "TokenFn",
]

Message = dict[str, str]
TokenFn = Callable[[str], None]
"""Called with each piece of text as the model produces it."""


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    first_token_ms: float | None
    """From the request to the first generated text."""
    generation_ms: float
    """From the request to the last generated text."""
    finish_reason: str | None = None

    @property
    def tokens_per_s(self) -> float:
        """Generation speed after the first token (the prompt is processed before it)."""
        if self.completion_tokens < 2 or self.first_token_ms is None:
            return 0.0
        seconds = (self.generation_ms - self.first_token_ms) / 1000
        return (self.completion_tokens - 1) / seconds if seconds > 0 else 0.0


# The end of a whole sentence or line: . ! ? (with closing quotes or brackets) or a line break.
_WHOLE = re.compile(r"[.!?][\"')\]]*(?=\s|$)|\n")

STOPPED = ("repetition", "time_limit")
"""Finish reasons of a generation a :class:`LoopGuard` stopped."""


class LoopGuard:
    """Stops a generation that repeats itself or runs past its time.

    A small model can fall into a loop ("```bash # onboarding.md" 512 times, for 229 s)
    where greedy decoding never samples its way out. A block of ``p`` pieces (tokens, as
    streamed) repeated back to back until the repeats span ``min_span`` pieces (at least
    three repeats) is a loop: generation stops and the text keeps one copy. Fed each piece
    by the generator; ``reason`` says why it stopped (``repetition`` or ``time_limit``).
    """

    def __init__(self, time_limit_s: float | None = None, min_span: int = 32, max_period: int = 64):
        self._deadline = None if not time_limit_s else time.monotonic() + time_limit_s
        self._min_span = min_span
        self._max_period = max_period
        self._pieces: list[str] = []
        self._loop_start: int | None = None
        self.reason: str | None = None

    def stop(self, piece: str) -> bool:
        """Record ``piece``; whether generation should stop now."""
        pieces = self._pieces
        pieces.append(piece)
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self.reason = "time_limit"
            return True
        n = len(pieces)
        for period in range(1, min(self._max_period, n // 3) + 1):
            repeats = max(3, -(-self._min_span // period))
            if repeats * period > n:
                continue
            block = pieces[n - period :]
            if all(
                pieces[n - k * period : n - (k - 1) * period] == block
                for k in range(2, repeats + 1)
            ):
                self.reason = "repetition"
                self._loop_start = n - (repeats - 1) * period
                return True
        return False

    def text(self, text: str) -> str:
        """``text`` (the whole generation) with a detected loop cut to its first copy, and back
        to the end of its last whole sentence or line: a cut never leaves a fragment."""
        if self._loop_start is None:
            return text
        kept = "".join(self._pieces[: self._loop_start]).rstrip()
        ends = [m.end() for m in _WHOLE.finditer(kept)]
        return kept[: ends[-1]].rstrip() if ends else ""


@dataclass(frozen=True)
class ServedAdapter:
    """A registered adapter as the answer path uses it."""

    spec: str
    """``NAME@VERSION``."""
    lora: Path
    """Its GGUF LoRA."""
    system_prompt: str | None = None
    """The system message it was trained with. Answers without passages use it, and none of
    ours when it trained with none: a fine-tune answers best in the format it learned."""
    peft: Path | None = None
    """Its PEFT folder (what vLLM loads)."""
    base_model: str = ""
    """The base it was trained on, as given (a packaged name, GGUF path or HF id)."""
    base_gguf: str = ""
    """The GGUF file of that base, when it was one."""

    @property
    def size(self) -> int:
        """Bytes of its GGUF LoRA (0 when there is none): about what it takes loaded."""
        try:
            return self.lora.stat().st_size
        except OSError:
            return 0


@dataclass(frozen=True)
class Availability:
    """Where an adapter version can be answered with now."""

    where: Literal["in_process", "server", "none"]
    detail: str
    """How (loaded, loads on first use, the server's name for it) or why not."""


class Generator(Protocol):
    name: str
    """Names the backend and model, e.g. ``llama.cpp:SmolLM2-135M-Instruct.Q4_1.gguf``."""
    context_window: int
    """Tokens the model attends to: prompt and answer together."""

    def count_tokens(self, text: str) -> int: ...

    def chat(
        self,
        messages: Sequence[Message],
        max_tokens: int,
        temperature: float,
        on_token: TokenFn | None = None,
        time_limit_s: float | None = None,
        adapter: ServedAdapter | None = None,
    ) -> Completion:
        """Generate a reply, with ``adapter`` applied (None: the base model). Implementations
        serialise concurrent calls themselves, and stop (``finish_reason`` ``repetition`` or
        ``time_limit``) as a :class:`LoopGuard` says.

        Raises:
            UserError: the backend cannot serve ``adapter`` (the message says why and what to do).
        """
        ...

    def availability(self, adapter: ServedAdapter) -> Availability:
        """Whether ``adapter`` can be answered with now, and how or why not."""
        ...

    def release(self, specs: Sequence[str]) -> list[str]:
        """Free the adapters ``NAME@VERSION`` in ``specs`` where they are loaded (their
        versions were deleted); notes on what could not be freed."""
        ...

    def close(self) -> None: ...
