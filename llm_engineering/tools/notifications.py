"""Index changes become MCP resource notifications, in both protocol eras.

The indexing thread reports an :class:`~llm_engineering.index_store.changes.IndexChange`;
one task on the server's event loop turns it into

* ``notifications/resources/updated`` for each changed document someone subscribed to, and
* ``notifications/resources/list_changed`` when documents came or went, coalesced: the
  first at once, then at most one per ``interval`` seconds however many changes arrive.

2026-07-28 clients subscribe with ``subscriptions/listen``: events go on the SDK's
subscription bus, which filters them per stream. Handshake-era clients (2025-11-25 and
before: most hosts today) subscribe with ``resources/subscribe``; their connections are
tracked here and sent the notifications directly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.connection import Connection
from mcp.server.session import ServerSession
from mcp.server.subscriptions import ResourcesListChanged, ResourceUpdated, SubscriptionBus

from llm_engineering.index_store.changes import IndexChange
from llm_engineering.index_store.service import IndexService

__all__ = ["ResourceNotifier"]

log = logging.getLogger(__name__)


def connection_of(session: ServerSession) -> Connection:
    # Private: a lowlevel handler gets a per-request ServerSession, and the connection it
    # belongs to (what outlives the request, identifies the client and can be notified later)
    # is only reachable through it: ServerRequestContext has no connection field.
    # tests/server/test_sdk_seams.py pins it.
    connection = session._connection  # pyright: ignore[reportPrivateUsage]
    assert isinstance(connection, Connection)
    return connection


class ResourceNotifier:
    """Sends resource notifications for index changes.

    Args:
        bus: The server's subscription bus (``MCPServer(subscriptions=bus)``).
        interval: The least time between two ``list_changed`` notifications.
        clock: The event loop's clock (tests pass a fake one).
    """

    def __init__(
        self,
        bus: SubscriptionBus,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = anyio.current_time,
    ):
        self._bus = bus
        self._uri_of: Callable[[str], str] = str
        self._interval = interval
        self._clock = clock
        self._connections: dict[Connection, set[str]] = {}
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._send: MemoryObjectSendStream[IndexChange] | None = None

    # -- handshake-era connections (on the event loop) ------------------------------------

    def connected(self, session: ServerSession) -> None:
        """A handshake-era client finished initializing: it gets ``list_changed`` from now on."""
        self._track(connection_of(session))

    def subscribe(self, session: ServerSession, uri: str) -> None:
        self._track(connection_of(session)).add(uri)

    def unsubscribe(self, session: ServerSession, uri: str) -> None:
        self._connections.get(connection_of(session), set()).discard(uri)

    def subscribers(self, uri: str) -> int:
        return sum(uri in uris for uris in self._connections.values())

    def _track(self, connection: Connection) -> set[str]:
        if connection not in self._connections:
            self._connections[connection] = set()
            connection.exit_stack.callback(self._connections.pop, connection, None)
        return self._connections[connection]

    # -- from the indexing thread -------------------------------------------------------

    def follow(self, index: IndexService) -> Callable[[], None]:
        """Notify ``index``'s changes from now on; returns a function that stops it."""
        self._uri_of = index.document_uri
        return index.on_change(self.index_changed)

    def index_changed(self, change: IndexChange) -> None:
        """Queue ``change`` for the event loop (thread-safe; returns at once)."""
        if self._send is None or self._token is None:
            return
        try:
            anyio.from_thread.run_sync(self._send.send_nowait, change, token=self._token)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, RuntimeError) as exc:
            log.debug("index change not notified (the server is stopping): %s", exc)

    # -- the loop -----------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Deliver queued changes until cancelled (start it with ``task_group.start``)."""
        send, receive = anyio.create_memory_object_stream[IndexChange](math.inf)
        self._token, self._send = anyio.lowlevel.current_token(), send
        task_status.started()
        try:
            await self._deliver(receive)
        finally:
            self._send = None
            send.close()
            receive.close()

    async def _deliver(self, receive: MemoryObjectReceiveStream[IndexChange]) -> None:
        last_list = -math.inf
        list_pending = False
        while True:
            wait = max(0.0, last_list + self._interval - self._clock()) if list_pending else None
            with anyio.move_on_after(wait):
                change = await receive.receive()
                for path in (*change.updated, *change.failed, *change.removed):
                    await self._updated(self._uri_of(path))
                list_pending = list_pending or change.listing_changed
            if list_pending and self._clock() >= last_list + self._interval:
                list_pending, last_list = False, self._clock()
                await self._list_changed()

    async def _updated(self, uri: str) -> None:
        await self._bus.publish(ResourceUpdated(uri=uri))
        for connection, uris in list(self._connections.items()):
            if uri in uris:
                await connection.notify("notifications/resources/updated", {"uri": uri})

    async def _list_changed(self) -> None:
        await self._bus.publish(ResourcesListChanged())
        for connection in list(self._connections):
            await connection.notify("notifications/resources/list_changed", None)
