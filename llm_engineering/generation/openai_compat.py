"""An OpenAI-compatible chat server (llama.cpp server, vLLM, llama-cpp-python's server...).

Streams ``/v1/chat/completions`` over server-sent events. Token counts for packing the
context are estimated (the server's tokenizer is not at hand), with a safety margin;
the usage in the result is the server's own when it reports it. Adapters are asked for
as the server's kind wants (:mod:`llm_engineering.generation.servers`).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_engineering.errors import ModelLoadError
from llm_engineering.generation.base import (
    Availability,
    Completion,
    LoopGuard,
    Message,
    ServedAdapter,
    TokenFn,
)
from llm_engineering.generation.servers import PathMap, server_adapters

__all__ = ["OpenAICompatibleGenerator"]

# Characters per token for English text with common tokenizers; a conservative estimate.
_CHARS_PER_TOKEN = 3.2


class OpenAICompatibleGenerator:
    """Chat completions from a server at ``base_url`` (with or without the ``/v1`` suffix).

    Args:
        base_url: e.g. ``http://127.0.0.1:8080`` or ``http://gpu-box:8000/v1``.
        model: The model name to request; empty = the first model the server lists.
        api_key: Sent as a bearer token when given.
        context_window: The server model's context size, for packing.
        timeout: Seconds to wait for the server.
        kind: ``auto`` (told by ``GET /v1/models``), ``openai``, ``vllm``, ``llama-server`` or
            ``llama-cpp-python``: how adapters are asked for.
        paths: Where the server sees our adapters folder (default: where it is here).

    Raises:
        ModelLoadError: the server cannot be reached, refuses the key, or serves no model.
    """

    def __init__(
        self,
        base_url: str,
        model: str = "",
        api_key: str | None = None,
        context_window: int = 4096,
        timeout: float = 300.0,
        kind: str = "auto",
        paths: PathMap | None = None,
    ):
        import httpx

        root = base_url.rstrip("/")
        self.base_url = root if root.endswith("/v1") else f"{root}/v1"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout, connect=10.0))
        self.context_window = context_window
        listing = self._request("GET", "/models").json()
        models = listing.get("data") or []
        if not models:
            raise ModelLoadError(f"the model server at {self.base_url} lists no models")
        self.model = model or str(models[0]["id"])
        self.name = f"openai:{self.model}@{root}"
        server_root = root[: -len("/v1")] if root.endswith("/v1") else root
        self.adapters = server_adapters(
            kind, self._client, server_root, self.model, listing, paths or PathMap(Path("."))
        )
        self.kind = self.adapters.kind
        self._lock = threading.Lock()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._client.request(method, f"{self.base_url}{path}", **kwargs)
        except httpx.TransportError as exc:
            raise ModelLoadError(
                f"cannot reach the model server at {self.base_url} ({exc})"
            ) from exc
        if response.status_code in (401, 403):
            raise ModelLoadError(
                f"the model server at {self.base_url} refused the request ({response.status_code}): "
                "check the API key (LLM_ENG_LLM_API_KEY or OPENAI_API_KEY)"
            )
        if response.status_code >= 400:
            raise ModelLoadError(
                f"the model server at {self.base_url} answered {response.status_code}: {response.text[:300]}"
            )
        return response

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text) / _CHARS_PER_TOKEN)

    def chat(
        self,
        messages: Sequence[Message],
        max_tokens: int,
        temperature: float,
        on_token: TokenFn | None = None,
        time_limit_s: float | None = None,
        adapter: ServedAdapter | None = None,
    ) -> Completion:
        import httpx

        guard = LoopGuard(time_limit_s)

        body = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
            **self.adapters.fields(adapter),
        }
        pieces: list[str] = []
        first: float | None = None
        finish: str | None = None
        usage: dict[str, int] = {}
        with self._lock:
            started = time.perf_counter()
            try:
                with self._client.stream(
                    "POST", f"{self.base_url}/chat/completions", json=body
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise ModelLoadError(
                            f"the model server at {self.base_url} answered {response.status_code}: "
                            f"{response.text[:300]}"
                        )
                    for line in response.iter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            break
                        event = json.loads(data)
                        usage = event.get("usage") or usage
                        for choice in event.get("choices") or []:
                            piece = (choice.get("delta") or {}).get("content")
                            if piece:
                                if first is None:
                                    first = (time.perf_counter() - started) * 1000
                                pieces.append(piece)
                                if on_token is not None:
                                    on_token(piece)
                                if guard.stop(piece):
                                    finish = guard.reason
                                    break
                            finish = choice.get("finish_reason") or finish
                        if guard.reason:
                            break  # closing the response stops the server generating
            except httpx.TransportError as exc:
                raise ModelLoadError(
                    f"the model server at {self.base_url} failed mid-answer ({exc})"
                ) from exc
            elapsed = (time.perf_counter() - started) * 1000
        text = guard.text("".join(pieces))
        prompt_tokens = int(
            usage.get("prompt_tokens") or sum(self.count_tokens(m["content"]) for m in messages)
        )
        completion_tokens = int(usage.get("completion_tokens") or len(pieces))
        return Completion(text, prompt_tokens, completion_tokens, first, elapsed, finish)

    def availability(self, adapter: ServedAdapter) -> Availability:
        return self.adapters.availability(adapter)

    def release(self, specs: Sequence[str]) -> list[str]:
        return self.adapters.release(specs)

    def close(self) -> None:
        self._client.close()
