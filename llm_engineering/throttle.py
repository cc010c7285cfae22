"""Slowing down whoever keeps guessing the token: the login form, the dashboard's and ``/mcp``'s bearer.

A client (its address) gets ``FREE_FAILURES`` wrong tokens for nothing; after that each of
its attempts waits, before it is checked, twice as long as the last (``FIRST_DELAY_S`` up
to ``MAX_DELAY_S``), one attempt at a time, so sending guesses in parallel buys nothing.
The right token is never refused: at worst it waits one delay, and it clears the count.
A client that stays quiet for ``FORGET_AFTER_S`` starts afresh. Every wrong token is
logged with the client's address and its count.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

__all__ = ["TokenThrottle", "client_of"]

log = logging.getLogger(__name__)

FREE_FAILURES = 5
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 8.0
FORGET_AFTER_S = 15 * 60.0
MAX_CLIENTS = 10_000
"""Clients remembered at most (the oldest are forgotten first): memory stays bounded."""


@dataclass
class _Client:
    failures: int = 0
    last_failure: float = 0.0
    turn: anyio.Lock = field(default_factory=anyio.Lock)


class TokenThrottle:
    """Per-client backoff on wrong tokens.

    Args:
        clock: Seconds, monotonic (tests pass a manual one).
        sleep: How to wait (tests record the waits instead of taking them).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ):
        self._clock = clock
        self._sleep = sleep
        self._clients: OrderedDict[str, _Client] = OrderedDict()

    def delay(self, client: str) -> float:
        """Seconds ``client``'s next attempt waits before it is checked (0 while it has not failed much)."""
        state = self._clients.get(client)
        if state is None or state.failures < FREE_FAILURES:
            return 0.0
        backoff = min(FIRST_DELAY_S * 2 ** (state.failures - FREE_FAILURES), MAX_DELAY_S)
        return max(0.0, state.last_failure + backoff - self._clock())

    async def attempt(self, client: str, check: Callable[[], bool], what: str = "token") -> bool:
        """Run ``check`` (is the token right?) for ``client``, after its wait; record the outcome."""
        state = self._client(client)
        async with state.turn:  # one attempt at a time per client: parallel guesses queue
            wait = self.delay(client)
            if wait > 0:
                await self._sleep(wait)
            if check():
                state.failures = 0
                return True
            state.failures += 1
            state.last_failure = self._clock()
            next_wait = self.delay(client)
            log.warning(
                "wrong %s from %s (%d in a row)%s",
                what,
                client,
                state.failures,
                f"; its next attempt waits {next_wait:.1f} s" if next_wait else "",
            )
            return False

    def _client(self, client: str) -> _Client:
        now = self._clock()
        state = self._clients.pop(client, None) or _Client()
        if state.failures and now - state.last_failure > FORGET_AFTER_S:
            state.failures = 0
        self._clients[client] = state
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)
        return state


def client_of(scope: Mapping[str, Any]) -> str:
    """The address an ASGI request came from ('unknown' when the server gives none)."""
    client = scope.get("client")
    if isinstance(client, (tuple, list)) and client:
        return str(client[0])
    return "unknown"
