"""`get_document` and `list_documents` over MCP stdio, as an agent uses them after a search."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from tests.conftest import FACTS
from tests.server.helpers import call, error_of, indexed, search, stdio_client, wait_for_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_an_agent_opens_a_hit_reads_on_and_is_kept_inside_the_folder(
    mixed_folder: Path, tmp_path: Path
) -> None:
    notes = mixed_folder / "handbook.md"
    notes.write_text(
        "# Handbook\n\n"
        + "\n\n".join(
            f"## Chapter {c}\n\n" + "\n".join(f"Rule {c}.{i}: kestrel{c}x{i}." for i in range(15))
            for c in range(1, 6)
        )
        + "\n"
    )
    (tmp_path / "secret.md").write_text("# Secret\n\nroot:x:0:0\n")
    os.symlink(tmp_path, mixed_folder / "escape")
    (mixed_folder / "broken.docx").write_bytes(b"not a zip at all")
    async with stdio_client(tmp_path / "data", "--watch", str(mixed_folder)) as client:
        status = await wait_for_status(client, indexed(9))
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["get_document"].annotations.read_only_hint is True
        assert tools["list_documents"].output_schema is not None

        hit = next(
            h for h in await search(client, "kestrel3x7", top_k=5) if "handbook" in h["path"]
        )
        doc = await call(client, "get_document", chunk_id=hit["chunk_id"], around=2)
        own = notes.read_text().split("\n")
        assert doc["text"].split("\n") == own[hit["start_line"] - 3 : hit["end_line"] + 2]
        assert doc["uri"] == f"doc://{mixed_folder.name}/handbook.md"

        # read the whole file in small pieces, following next_start_line
        pieces, start = [], 1
        while start is not None:
            part = await call(
                client, "get_document", path="handbook.md", start_line=start, max_chars=400
            )
            pieces.append(part["text"])
            start = part["next_start_line"]
        assert "\n".join(pieces).split("\n") == own[: len(own) - 1]

        pdf = await call(client, "get_document", path=FACTS["pdf"][0], page=2)
        assert FACTS["pdf"][1].split(".")[0] in " ".join(pdf["text"].split())
        assert pdf["total_pages"] == 2

        for path in ("../secret.md", str(tmp_path / "secret.md"), "escape/secret.md"):
            message = await error_of(client, "get_document", path=path)
            assert "outside the watched folders" in message, message
        message = await error_of(client, "get_document", path="broken.docx")
        assert "could not be indexed" in message and "not a readable DOCX" in message

        listing = await call(client, "list_documents", limit=3)
        assert listing["totals"] == {
            "indexed": status["documents"],
            "pending": status["pending"],
            "failed": len(status["failed"]),
        }
        seen = [d["path"] for d in listing["documents"]]
        while listing["next_cursor"]:
            listing = await call(client, "list_documents", limit=3, cursor=listing["next_cursor"])
            seen += [d["path"] for d in listing["documents"]]
        # 7 indexed, the broken file and the link leading out (listed, never followed)
        assert len(seen) == len(set(seen)) == 9
        failed = await call(client, "list_documents", status=["failed"])
        reasons = {Path(d["path"]).name: d["error"] for d in failed["documents"]}
        assert set(reasons) == {"broken.docx", "escape"}
        assert "not a readable DOCX" in reasons["broken.docx"]
        assert "outside the watched folders" in reasons["escape"]
        message = await error_of(client, "list_documents", modified_after="last tuesday")
        assert "ISO 8601" in message

        # Careless and hostile arguments: each a message saying what is wrong, not a bare failure.
        long_name = "n" * 300 + ".md"
        for path, expected in (
            ("notes\x00.md", "NUL byte"),
            (str(mixed_folder / "a\x00b" / "c.md"), "NUL byte"),
            (long_name, "at most 255 bytes"),
            ("/".join(["deep"] * 1200), "at most 4,096 bytes"),
        ):
            message = await error_of(client, "get_document", path=path)
            assert expected in message, message
        for value in ("1e300", "nan", "inf", "-1e300"):
            message = await error_of(client, "list_documents", modified_after=value)
            assert "finite number" in message and "years 1-9999" in message, message
        for value in ("99999-01-01", "0000-01-01"):
            message = await error_of(client, "list_documents", modified_after=value)
            assert "ISO 8601" in message, message
        for uri, expected in (
            (f"doc://{mixed_folder.name}/notes%00.md", "NUL byte"),
            (f"doc://{mixed_folder.name}/{long_name}", "at most 255 bytes"),
        ):
            with pytest.raises(MCPError) as refused:
                await client.read_resource(uri)
            assert refused.value.error.code == INVALID_PARAMS, refused.value.error
            assert expected in refused.value.error.message, refused.value.error
