"""The wrong-token throttle: free first failures, then growing waits per client, one attempt
at a time, never a lockout of the right token."""

from __future__ import annotations

import logging

import anyio
import pytest

from llm_engineering.throttle import FREE_FAILURES, MAX_DELAY_S, TokenThrottle

pytestmark = pytest.mark.anyio


class ManualTime:
    """A clock that moves only when the throttle sleeps: waits are recorded, never taken."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await anyio.lowlevel.checkpoint()


async def test_waits_start_after_the_free_failures_double_and_stop_growing_at_the_cap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    time = ManualTime()
    throttle = TokenThrottle(time.clock, time.sleep)
    with caplog.at_level(logging.WARNING, logger="llm_engineering.throttle"):
        for _ in range(20):
            assert not await throttle.attempt("10.0.0.9", lambda: False, "login token")
    assert time.waits[:3] == [0.5, 1.0, 2.0]
    assert len(time.waits) == 20 - FREE_FAILURES
    assert max(time.waits) == MAX_DELAY_S and time.waits[-1] == MAX_DELAY_S
    assert "wrong login token from 10.0.0.9 (20 in a row)" in caplog.text


async def test_the_right_token_still_opens_after_many_failures_and_clears_the_count() -> None:
    time = ManualTime()
    throttle = TokenThrottle(time.clock, time.sleep)
    for _ in range(50):
        await throttle.attempt("10.0.0.9", lambda: False)
    before = len(time.waits)
    assert await throttle.attempt("10.0.0.9", lambda: True)
    assert time.waits[before:] == [MAX_DELAY_S]  # one wait at most, then in
    assert throttle.delay("10.0.0.9") == 0.0
    assert await throttle.attempt("10.0.0.9", lambda: True) and len(time.waits) == before + 1


async def test_another_client_is_not_slowed_by_one_that_guesses() -> None:
    time = ManualTime()
    throttle = TokenThrottle(time.clock, time.sleep)
    for _ in range(30):
        await throttle.attempt("10.0.0.9", lambda: False)
    waits = len(time.waits)
    assert await throttle.attempt("10.0.0.7", lambda: True)
    assert not await throttle.attempt("10.0.0.7", lambda: False)
    assert len(time.waits) == waits


async def test_guesses_sent_at_once_queue_behind_each_other() -> None:
    time = ManualTime()
    throttle = TokenThrottle(time.clock, time.sleep)
    async with anyio.create_task_group() as group:
        for _ in range(12):
            group.start_soon(throttle.attempt, "10.0.0.9", lambda: False)
    # Without the per-client turn all twelve would read "no failures yet" and none would wait.
    assert len(time.waits) == 12 - FREE_FAILURES and all(wait > 0 for wait in time.waits)


async def test_a_client_quiet_for_a_quarter_hour_starts_afresh() -> None:
    time = ManualTime()
    throttle = TokenThrottle(time.clock, time.sleep)
    for _ in range(10):
        await throttle.attempt("10.0.0.9", lambda: False)
    time.now += 16 * 60
    waits = len(time.waits)
    for _ in range(FREE_FAILURES):
        await throttle.attempt("10.0.0.9", lambda: False)
    assert len(time.waits) == waits
