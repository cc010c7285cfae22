"""`answer_with_context` over MCP stdio, with the real default model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.helpers import indexed, stdio_client, wait_for_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

FACT = "The Zephyr-9 espresso machine costs 1,249 euros and ships from Lyon within five days."


async def test_a_grounded_answer_cites_the_right_file_and_streams_its_tokens(
    mixed_folder: Path, tmp_path: Path
) -> None:
    (mixed_folder / "pricing.md").write_text(f"# Zephyr-9 price list\n\n{FACT}\n")
    async with stdio_client(tmp_path / "data", "--watch", str(mixed_folder)) as client:
        await wait_for_status(client, indexed(7))
        streamed: list[str] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            streamed.append(message or "")

        result = await client.call_tool(
            "answer_with_context", {"question": "How much does the Zephyr-9 cost?", "max_tokens": 60},
            progress_callback=on_progress,
        )  # fmt: skip
        assert not result.is_error, result.content
        answer = result.structured_content
        assert answer["status"] == "answered" and answer["grounded"] is True, answer
        assert "1,249" in answer["answer"]
        assert [Path(c["path"]).name for c in answer["citations"]] == ["pricing.md"]
        assert answer["usage"]["completion_tokens"] > 0 and answer["usage"]["prompt_tokens"] > 0
        assert answer["timings"]["tokens_per_s"] > 0 and answer["model"].startswith("llama.cpp:")
        assert "".join(streamed).strip() == answer["model_answer"]
        assert answer["passages"][0]["path"].endswith("pricing.md"), answer["passages"]
        assert all(p["score"] is not None and p["text"] for p in answer["passages"])

        given = await client.call_tool(
            "answer_with_context",
            {
                "question": "What is the capital of Peru?",
                "contexts": ["Bananas are yellow.", "Bread needs yeast."],
                "max_tokens": 40,
            },
        )
        assert given.structured_content["status"] == "not_in_context"
        assert given.structured_content["citations"] == []
        assert [p["text"] for p in given.structured_content["passages"]] == [
            "Bananas are yellow.", "Bread needs yeast.",
        ]  # fmt: skip

        none = await client.call_tool(
            "answer_with_context",
            {"question": "Who wrote Hamlet?", "contexts": [], "max_tokens": 30},
        )
        assert (
            none.structured_content["status"] == "no_context"
            and none.structured_content["grounded"] is False
        )

        bad = {
            "empty question": ({"question": " "}, "question is empty"),
            "max_tokens 0": ({"question": "q", "max_tokens": 0}, "max_tokens"),
            "top_k too big": ({"question": "q", "top_k": 99}, "top_k"),
            "temperature": ({"question": "q", "temperature": 5}, "temperature"),
            "unknown adapter": ({"question": "q", "adapter": "nope"}, "unknown adapter 'nope'"),
        }
        for label, (arguments, expected) in bad.items():
            result = await client.call_tool("answer_with_context", arguments)
            assert result.is_error and expected in result.content[0].text, label
