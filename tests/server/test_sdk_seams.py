"""The places the server leans on the MCP SDK's private internals, pinned.

The SDK (mcp 2.x) has no public way yet to do these; each test fails loudly, naming the
file to change, when an upgrade moves what it relies on:

* ``MCPServer._lowlevel_server``: tools/resources.py replaces ``resources/list`` and
  ``resources/read`` and adds ``resources/subscribe``/``unsubscribe`` on it;
  tools/completions.py registers ``completion/complete`` (the public
  ``MCPServer.completion()`` hands its handler no request context, so no lifespan state).
* ``ServerSession._connection``: tools/notifications.py ``connection_of``, the client's
  connection behind a per-request session (who subscribed; notified later; forgotten when
  it closes).

server/app.py declares ``resources.listChanged`` to handshake-era clients through the public
``MCPServer.middleware`` (provisional in 2.x), on the ``initialize`` result's wire form: the
first test pins that too.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from mcp import Client
from mcp.server.connection import Connection
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp_types import (
    ResourceListChangedNotification,
    ResourceTemplateReference,
    ResourceUpdatedNotification,
)

from llm_engineering.index_store.changes import IndexChange
from llm_engineering.server.app import _announce_resource_changes, create_server
from llm_engineering.tools import completions as completion_tools
from llm_engineering.tools import resources as resource_tools
from llm_engineering.tools.notifications import ResourceNotifier, connection_of
from llm_engineering.tools.resources import DOC_TEMPLATE

pytestmark = pytest.mark.anyio

URI = "doc://docs/notes.md"


def test_mcpserver_still_keeps_a_lowlevel_server_that_registers_and_replaces_handlers() -> None:
    server = MCPServer("seams")
    lowlevel = getattr(server, "_lowlevel_server", None)
    assert isinstance(lowlevel, Server), (
        "mcp no longer keeps MCPServer._lowlevel_server: tools/resources.py and "
        "tools/completions.py register their handlers on it; use the SDK's public accessor or "
        "handler registration now"
    )
    sdk_read = lowlevel.get_request_handler("resources/read")
    assert sdk_read is not None and callable(sdk_read.handler), (
        "the lowlevel Server's get_request_handler('resources/read') no longer gives the SDK's "
        "handler, which tools/resources.py passes non-doc:// reads on to"
    )
    resource_tools.register(server, ResourceNotifier(InMemorySubscriptionBus()))
    completion_tools.register(server)
    ours = {
        "resources/list": resource_tools,
        "resources/read": resource_tools,
        "resources/subscribe": resource_tools,
        "resources/unsubscribe": resource_tools,
        "completion/complete": completion_tools,
    }
    for method, module in ours.items():
        entry = lowlevel.get_request_handler(method)
        assert entry is not None and entry.handler.__module__ == module.__name__, (
            f"{method}: add_request_handler on MCPServer._lowlevel_server no longer installs "
            f"{module.__name__}'s handler"
        )


def test_a_request_session_still_leads_to_its_clients_connection() -> None:
    connection = Connection.for_loop(outbound=None)  # type: ignore[arg-type]
    session = ServerSession(None, connection)  # type: ignore[arg-type]
    assert connection_of(session) is connection, (
        "ServerSession no longer keeps its Connection in _connection: change "
        "tools/notifications.py connection_of"
    )


async def test_a_handshake_era_client_is_told_of_changes_on_its_connection_until_it_closes() -> (
    None
):
    bus = InMemorySubscriptionBus()
    notifier = ResourceNotifier(bus, interval=0.0)
    server = MCPServer("seams", subscriptions=bus)
    _announce_resource_changes(server, notifier)
    resource_tools.register(server, notifier)
    heard: list[Any] = []

    async def on_message(message: Any) -> None:
        heard.append(message)

    def told() -> set[str]:
        return {
            type(m).__name__
            for m in heard
            if isinstance(m, ResourceListChangedNotification)
            or (isinstance(m, ResourceUpdatedNotification) and m.params.uri == URI)
        }

    expected = {"ResourceUpdatedNotification", "ResourceListChangedNotification"}
    subscriber = Client(server, mode="legacy", message_handler=on_message)
    async with subscriber, Client(server, mode="legacy") as other:
        caps = subscriber.server_capabilities.resources
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # resources/subscribe is deprecated in 2026-07-28
            for client in (subscriber, subscriber, other):  # twice on one connection: once
                await client.subscribe_resource(URI)
            subscribed = notifier.subscribers(URI)
            await other.unsubscribe_resource(URI)
        kept = notifier.subscribers(URI)
        async with anyio.create_task_group() as tasks:
            await tasks.start(notifier.run)
            change = IndexChange(added=("doc://docs/new.md",), updated=(URI,))
            await anyio.to_thread.run_sync(notifier.index_changed, change)
            with anyio.move_on_after(10):
                while told() != expected:
                    await anyio.sleep(0.01)
            tasks.cancel_scope.cancel()
    assert caps is not None and caps.subscribe, "resources/subscribe is no longer advertised"
    assert caps.list_changed, (
        "the initialize result no longer says resources.listChanged: server/app.py "
        "_announce_resource_changes sets it on the result's wire form in a middleware"
    )
    assert (subscribed, kept) == (2, 1), "subscriptions are not counted per connection"
    assert told() == expected, f"not notified on its connection within 10 s: {heard}"
    assert notifier.subscribers(URI) == 0, (
        "a closed connection's subscriptions were kept: tools/notifications.py forgets them "
        "through Connection.exit_stack"
    )


async def test_completions_registered_on_the_lowlevel_server_read_the_lifespans_services(
    settings_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "notes"
    folder.mkdir()
    settings = settings_factory(watch=[folder])
    async with Client(create_server(settings, watch=False), mode="legacy") as client:
        assert client.server_capabilities.completions is not None
        result = await client.complete(
            ResourceTemplateReference(uri=DOC_TEMPLATE), {"name": "folder", "value": "no"}
        )
    assert result.completion.values == ["notes"], (
        "completion/complete no longer reaches tools/completions.py's handler with the request "
        "context it reads the watched folders from"
    )
