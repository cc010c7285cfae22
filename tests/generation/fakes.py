"""A deterministic generator for unit tests of the answer logic (the real model is tested too)."""

from __future__ import annotations

from collections.abc import Sequence

from llm_engineering.generation.base import Completion, Message, ServedAdapter, TokenFn


class ScriptedGenerator:
    """Replies with queued texts; counts a token per word; records what it was sent."""

    name = "scripted"

    def __init__(self, *replies: str, context_window: int = 4096):
        self.replies = list(replies)
        self.context_window = context_window
        self.sent: list[list[Message]] = []

    def enqueue(self, reply: str) -> None:
        self.replies.append(reply)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def chat(
        self,
        messages: Sequence[Message],
        max_tokens: int,
        temperature: float,
        on_token: TokenFn | None = None,
        time_limit_s: float | None = None,
        adapter: ServedAdapter | None = None,
    ) -> Completion:
        self.sent.append(list(messages))
        text = self.replies.pop(0)
        for word in text.split(" "):
            if on_token is not None:
                on_token(word + " ")
        prompt = sum(self.count_tokens(m["content"]) for m in messages)
        return Completion(text, prompt, self.count_tokens(text), 1.0, 2.0, "stop")

    def close(self) -> None:
        pass
