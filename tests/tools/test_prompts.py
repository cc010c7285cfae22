"""Prompts from the host's menu and argument completions, over stdio with the real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    EmbeddedResource,
    PromptReference,
    ResourceLink,
    ResourceTemplateReference,
    TextContent,
)

from llm_engineering.adapters.jobs import JobStore
from llm_engineering.adapters.registry import AdapterCard, AdapterRegistry
from llm_engineering.tools.completions import ADAPTER_TEMPLATE, JOB_TEMPLATE
from llm_engineering.tools.resources import DOC_TEMPLATE
from tests.conftest import FACTS
from tests.server.helpers import indexed, stdio_client, wait_for_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def seed_adapter_and_job(data_dir: Path) -> str:
    """An adapter named ``faq`` in the registry and a finished job; returns the job's id."""
    peft = data_dir / "peft-src"
    peft.mkdir(parents=True)
    (peft / "adapter_config.json").write_text("{}")
    card = AdapterCard(
        name="faq", version=0, base_model="m", base_gguf="m.gguf", base_gguf_sha256="ab" * 32,
        dataset_sha256="cd" * 32, dataset_examples=8, dataset_formats={"chat": 8},
        hyperparameters={"r": 16}, final_loss=0.5, best_loss=0.4, steps=6, train_tokens=900,
        job_id="j1",
    )  # fmt: skip
    AdapterRegistry(data_dir / "adapters").add(card, peft, None)
    store = JobStore(data_dir)
    job, _ = store.create("faq", "m", {})
    store.update(job.id, status="failed", error="seeded by the test")
    store.close()
    return job.id


async def complete(client: Client, ref: Any, name: str, value: str, **given: str) -> list[str]:
    result = await client.complete(ref, {"name": name, "value": value}, given or None)
    return result.completion.values


def text_of(message: Any) -> str:
    assert isinstance(message.content, TextContent)
    return message.content.text


async def test_prompts_are_listed_rendered_with_arguments_and_their_arguments_complete(
    mixed_folder: Path, tmp_path: Path
) -> None:
    job_id = seed_adapter_and_job(tmp_path / "data")
    notes = str(mixed_folder / FACTS["md"][0])
    async with stdio_client(tmp_path / "data", "--watch", str(mixed_folder)) as client:
        await wait_for_status(client, indexed(6))
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == {"ask_my_docs", "summarize_document", "fine_tune"}
        assert [(a.name, a.required) for a in prompts["fine_tune"].arguments or []] == [
            ("adapter_name", True),
            ("dataset_path", True),
        ]

        ask = await client.get_prompt(
            "ask_my_docs", {"question": "When does the quartet rehearse?"}
        )
        texts = [text_of(m) for m in ask.messages if isinstance(m.content, TextContent)]
        assert "search_docs" in texts[0] and "get_document" in texts[0]
        assert any(FACTS["md"][1] in t and f"{notes}:" in t for t in texts[1:])
        links = [m.content for m in ask.messages if isinstance(m.content, ResourceLink)]
        assert "doc://docs/notes.md" in {link.uri for link in links}

        summary = await client.get_prompt("summarize_document", {"path": "notes.md"})
        embedded = summary.messages[0].content
        assert isinstance(embedded, EmbeddedResource)
        document = await client.call_tool("get_document", {"path": notes})
        assert embedded.resource.uri == "doc://docs/notes.md"
        assert embedded.resource.text == document.structured_content["text"]  # type: ignore[union-attr,index]
        assert "Summarize" in text_of(summary.messages[1])

        tune = await client.get_prompt(
            "fine_tune", {"adapter_name": "club", "dataset_path": "/data/club.jsonl"}
        )
        (message,) = tune.messages
        for expected in ("start_qlora_job", "get_job", '"messages"', '"instruction"', "club"):
            assert expected in text_of(message)

        summarize = PromptReference(name="summarize_document")
        assert await complete(client, summarize, "path", str(mixed_folder / "no")) == [notes]
        assert await complete(client, summarize, "path", "orbit") == [
            str(mixed_folder / "orbits.py")
        ]
        # every form a person types completes, to the form the argument takes
        for typed in ("notes", "docs/no", f"{mixed_folder}/notes"):
            assert await complete(client, summarize, "path", typed) == [notes], typed
        doc = ResourceTemplateReference(uri=DOC_TEMPLATE)
        assert await complete(client, doc, "folder", "d") == ["docs"]
        for typed in ("re", "docs/re"):
            assert await complete(client, doc, "path", typed, folder="docs") == [
                "recipe.html",
                "report.pdf",
            ], typed
        ask_ref = PromptReference(name="ask_my_docs")
        assert await complete(client, ask_ref, "adapter", "f") == ["faq"]
        adapter = ResourceTemplateReference(uri=ADAPTER_TEMPLATE)
        assert await complete(client, adapter, "name", "") == ["faq"]
        job = ResourceTemplateReference(uri=JOB_TEMPLATE)
        assert await complete(client, job, "job_id", job_id[:6]) == [job_id]
        assert await complete(client, ask_ref, "question", "wh") == []
        assert await complete(client, ResourceTemplateReference(uri="x://{y}"), "y", "") == []

        # Wrong names and arguments: -32602 with what is known, never -32603.
        for name, arguments, expected in (
            ("ask_me", {"question": "x"}, "unknown prompt 'ask_me': the prompts are ask_my_docs("),
            ("ask_my_docs", {}, "missing required argument(s) 'question'"),
            ("ask_my_docs", {"question": "x", "colour": "red"}, "unknown argument(s) 'colour'"),
            ("fine_tune", {"adapter_name": "a"}, "'dataset_path'. It takes fine_tune("),
        ):
            with pytest.raises(MCPError) as refused:
                await client.get_prompt(name, arguments)
            error = refused.value.error
            assert error.code == INVALID_PARAMS and expected in error.message, error
