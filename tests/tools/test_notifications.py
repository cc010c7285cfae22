"""ResourceNotifier: index changes from the indexing thread become resource events, coalesced."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.to_thread
import pytest
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
)

from llm_engineering.index_store.changes import IndexChange
from llm_engineering.tools.notifications import ResourceNotifier
from tests.conftest import describe

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    try:
        with anyio.fail_after(timeout):
            while not check():
                await anyio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"never saw {describe(check)} within {timeout} s") from None


async def test_changes_inside_one_interval_give_one_list_changed_now_and_one_after_it() -> None:
    bus, clock, events = InMemorySubscriptionBus(), Clock(), list[ServerEvent]()
    bus.subscribe(events.append)
    notifier = ResourceNotifier(bus, interval=1.0, clock=clock)
    lists = lambda: sum(isinstance(e, ResourcesListChanged) for e in events)  # noqa: E731
    updated = lambda: [e.uri for e in events if isinstance(e, ResourceUpdated)]  # noqa: E731
    async with anyio.create_task_group() as tasks:
        await tasks.start(notifier.run)
        await anyio.to_thread.run_sync(notifier.index_changed, IndexChange(added=("/d/a.md",)))
        await until(lambda: lists() == 1)
        clock.now = 0.5
        for name in ("b", "c", "d"):
            change = IndexChange(added=(f"/d/{name}.md",), updated=(f"/d/{name}0.md",))
            await anyio.to_thread.run_sync(notifier.index_changed, change)
        await until(lambda: len(updated()) == 3)
        assert lists() == 1, "a second list_changed inside the interval"
        clock.now = 1.0
        await anyio.to_thread.run_sync(notifier.index_changed, IndexChange(updated=("/d/e.md",)))
        await until(lambda: lists() == 2 and len(updated()) == 4)
        tasks.cancel_scope.cancel()
    assert lists() == 2
    assert updated() == ["/d/b0.md", "/d/c0.md", "/d/d0.md", "/d/e.md"]


async def test_a_changed_failed_or_removed_document_is_updated_and_only_comings_and_goings_list() -> (
    None
):
    bus, events = InMemorySubscriptionBus(), list[ServerEvent]()
    bus.subscribe(events.append)
    notifier = ResourceNotifier(bus, interval=0.0)
    async with anyio.create_task_group() as tasks:
        await tasks.start(notifier.run)
        await anyio.to_thread.run_sync(notifier.index_changed, IndexChange(updated=("/d/a.md",)))
        change = IndexChange(failed=("/d/b.md",), removed=("/d/c.md",))
        await anyio.to_thread.run_sync(notifier.index_changed, change)
        await until(lambda: len(events) == 4)
        tasks.cancel_scope.cancel()
    assert events == [
        ResourceUpdated("/d/a.md"),
        ResourceUpdated("/d/b.md"),
        ResourceUpdated("/d/c.md"),
        ResourcesListChanged(),
    ]


async def test_a_change_reported_before_the_loop_runs_or_after_it_stopped_is_dropped() -> None:
    """Dropped, not kept for later: a run delivers only what is reported while it runs."""
    bus, events = InMemorySubscriptionBus(), list[ServerEvent]()
    bus.subscribe(events.append)
    notifier = ResourceNotifier(bus, interval=0.0)

    async def report(name: str) -> None:
        change = IndexChange(updated=(f"/d/{name}.md",))
        await anyio.to_thread.run_sync(notifier.index_changed, change)

    async def run_once(name: str) -> None:
        async with anyio.create_task_group() as tasks:
            await tasks.start(notifier.run)
            await report(name)
            await until(lambda: ResourceUpdated(f"/d/{name}.md") in events)
            tasks.cancel_scope.cancel()

    await report("before-any-run")
    await run_once("first")
    await report("between-runs")
    await run_once("second")
    await report("after-the-last")
    assert events == [ResourceUpdated("/d/first.md"), ResourceUpdated("/d/second.md")]
