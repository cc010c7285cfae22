"""Hostile files in a watched folder, end to end over stdio with the real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.helpers import indexed, search, stdio_client, wait_for_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_links_out_of_the_folder_are_never_searched_or_served_and_status_says_why(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    (outside / "keys").mkdir(parents=True)
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (outside / "keys" / "notes.md").write_text("# Keys\n\nThe quartermaster vault combination.\n")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "welcome.md").write_text("# Welcome\n\nThe greenhouse tomato rota.\n")
    (folder / "passwd.txt").symlink_to(outside / "passwd")
    (folder / "keys").symlink_to(outside / "keys", target_is_directory=True)

    async with stdio_client(tmp_path / "data", "--watch", str(folder)) as client:
        status = await wait_for_status(client, indexed(3))
        failed = {Path(f["path"]).name: f["error"] for f in status["failed"]}
        assert set(failed) == {"passwd.txt", "keys"}, status["failed"]
        assert all("outside the watched folders" in reason for reason in failed.values())
        assert status["documents"] == 1

        for query in ("root:x:0:0", "quartermaster vault combination"):
            for mode in ("keyword", "hybrid"):
                texts = [hit["text"] for hit in await search(client, query, mode=mode, top_k=10)]
                assert not any("root:x" in t or "quartermaster" in t for t in texts), texts

        for path in (folder / "passwd.txt", folder / "keys" / "notes.md"):
            result = await client.call_tool("get_document", {"path": str(path)})
            assert result.is_error, result.content
            message = result.content[0].text  # type: ignore[union-attr]
            assert "outside the watched folders" in message, message
            assert "root:x" not in message and "quartermaster" not in message
