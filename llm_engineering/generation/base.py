"""The generator interface: chat messages in, streamed text and usage out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["Completion", "Generator", "Message", "ServedAdapter", "TokenFn"]

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
    ) -> Completion:
        """Generate a reply. Implementations serialise concurrent calls themselves."""
        ...

    def close(self) -> None: ...
