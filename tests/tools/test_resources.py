"""Indexed documents as resources, over stdio and HTTP, with the real server and real files."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp_types import (
    ResourceListChangedNotification,
    ResourceUpdatedNotification,
    TextResourceContents,
)

from llm_engineering.tools.resources import DOC_TEMPLATE, PAGE_SIZE
from tests.conftest import FACTS, LLM_ENG, describe, free_port
from tests.server.helpers import indexed, running, stdio_client, wait_for_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def list_all(client: Client) -> tuple[list[Any], int]:
    """Every resource, following the cursors; and how many pages that took."""
    resources, cursor, pages = [], None, 0
    while True:
        page = await client.list_resources(cursor=cursor)
        resources += page.resources
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            return resources, pages


async def read_text(client: Client, uri: str) -> TextResourceContents:
    result = await client.read_resource(uri)
    (contents,) = result.contents
    assert isinstance(contents, TextResourceContents)
    return contents


async def document_text(client: Client, path: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool("get_document", {"path": path, **args})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def test_resources_list_pages_through_every_document_and_read_gives_get_documents_text(
    mixed_folder: Path, tmp_path: Path
) -> None:
    for n in range(PAGE_SIZE):
        (mixed_folder / "more" / f"note-{n:03}.txt").parent.mkdir(exist_ok=True)
        (mixed_folder / "more" / f"note-{n:03}.txt").write_text(f"Note number {n}.\n")
    total = PAGE_SIZE + 6
    async with stdio_client(tmp_path / "data", "--watch", str(mixed_folder)) as client:
        await wait_for_status(client, indexed(total))
        caps = client.server_capabilities.resources
        assert caps is not None and caps.subscribe and caps.list_changed

        resources, pages = await list_all(client)
        assert pages == 2
        assert len({r.uri for r in resources}) == total
        by_name = {r.name: r for r in resources}
        notes = by_name[FACTS["md"][0]]
        assert notes.uri == "doc://docs/notes.md"
        assert (notes.title, notes.mime_type) == ("Club notes", "text/markdown")
        assert by_name["more/note-007.txt"].uri == "doc://docs/more/note-007.txt"
        templates = await client.list_resource_templates()
        assert DOC_TEMPLATE in {t.uri_template for t in templates.resource_templates}

        for kind, args in (("md", {}), ("docx", {}), ("pdf", {"pages": "1-2"})):
            path = str(mixed_folder / FACTS[kind][0])
            expected = await document_text(client, path, **args)
            contents = await read_text(client, expected["uri"])
            assert contents.text == expected["text"] and FACTS[kind][1] in contents.text
            assert contents.mime_type == expected["mime_type"]

        for outside in ("doc://docs/../../etc/passwd", "doc://elsewhere/notes.md"):
            with pytest.raises(MCPError):
                await client.read_resource(outside)

        result = await client.call_tool("search_docs", {"query": "xylophone quartet", "top_k": 3})
        hits = result.structured_content["results"]  # type: ignore[index]
        links = [c for c in result.content if c.type == "resource_link"]
        assert hits[0]["uri"] == "doc://docs/notes.md"
        assert [link.uri for link in links] == list(dict.fromkeys(h["uri"] for h in hits))
        assert links[0].name == "notes.md" and links[0].title == "Club notes"


async def test_resources_list_and_read_over_streamable_http(
    mixed_folder: Path, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    command = [LLM_ENG, "serve", "--http", "--port", str(port), "--data-dir", str(tmp_path / "d")]
    with running([*command, "--watch", str(mixed_folder)], ready_url=url):
        async with Client(url) as client:
            await wait_for_status(client, indexed(6))
            resources, pages = await list_all(client)
            assert pages == 1 and len(resources) == 6
            uri = next(r.uri for r in resources if r.name == FACTS["txt"][0])
            expected = await document_text(client, str(mixed_folder / FACTS["txt"][0]))
            assert (await read_text(client, uri)).text == expected["text"]


async def until_seen(seen: list[Any], wanted: Callable[[Any], bool], timeout: float = 120) -> None:
    try:
        with anyio.fail_after(timeout):
            while not any(wanted(item) for item in seen):
                await anyio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(
            f"no notification satisfied {describe(wanted)} within {timeout} s; got {seen}"
        ) from None


async def test_a_subscribed_file_edited_on_disk_is_updated_and_a_new_file_changes_the_list(
    mixed_folder: Path, tmp_path: Path
) -> None:
    """Handshake-era clients (most hosts today) subscribe with resources/subscribe."""
    received: list[Any] = []

    async def on_message(message: Any) -> None:
        received.append(message)

    client = stdio_client(
        tmp_path / "data", "--watch", str(mixed_folder), mode="legacy", message_handler=on_message
    )
    async with client:
        assert client.protocol_version < "2026"
        await wait_for_status(client, indexed(6))
        caps = client.server_capabilities.resources
        assert caps is not None and caps.subscribe and caps.list_changed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # resources/subscribe is deprecated in 2026-07-28
            await client.subscribe_resource("doc://docs/notes.md")

        (mixed_folder / "notes.md").write_text(
            "# Club notes\n\nThe quartet now meets on Fridays.\n"
        )
        await until_seen(
            received,
            lambda m: (
                isinstance(m, ResourceUpdatedNotification) and m.params.uri == "doc://docs/notes.md"
            ),
        )
        assert "Fridays" in (await read_text(client, "doc://docs/notes.md")).text
        # Notifications arrive in order, so the start-up ingest's list_changed is behind us.
        received.clear()

        (mixed_folder / "agenda.md").write_text("# Agenda\n\nElect a treasurer.\n")
        await until_seen(received, lambda m: isinstance(m, ResourceListChangedNotification))
        await wait_for_status(client, indexed(7))
        assert "doc://docs/agenda.md" in {r.uri for r in (await list_all(client))[0]}
        assert not any(isinstance(m, ResourceUpdatedNotification) for m in received)


async def test_a_listening_client_hears_the_same_changes_on_its_subscription_stream(
    mixed_folder: Path, tmp_path: Path
) -> None:
    """2026-07-28 clients subscribe with subscriptions/listen instead."""
    async with stdio_client(tmp_path / "data", "--watch", str(mixed_folder)) as client:
        assert client.protocol_version >= "2026"
        await wait_for_status(client, indexed(6))
        uri = "doc://docs/log.txt"
        async with client.listen(
            resources_list_changed=True, resource_subscriptions=[uri]
        ) as events:
            (mixed_folder / "log.txt").write_text("Station log\n\nA storm is coming.\n")
            (mixed_folder / "new.txt").write_text("A new page of the log.\n")
            seen: list[Any] = []
            try:
                with anyio.fail_after(120):
                    async for event in events:
                        seen.append(event)
                        if ResourceUpdated(uri) in seen and ResourcesListChanged() in seen:
                            break
            except TimeoutError:
                raise AssertionError(f"no updated and list_changed within 120 s: {seen}") from None
        assert all(e in (ResourceUpdated(uri), ResourcesListChanged()) for e in seen), seen
