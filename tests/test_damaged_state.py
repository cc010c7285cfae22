"""A damaged ``state.sqlite``: every opener names the file and the command that remakes it,
the server stays up to say so, and ``ingest --rebuild`` remakes it, keeping the training jobs
(their rows come back from the job folders) and the adapters (which live apart)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from llm_engineering.adapters.hyperparams import QLoRAConfig
from llm_engineering.adapters.job_folder import JobFolder
from llm_engineering.adapters.jobs import JobStore
from llm_engineering.adapters.records import DatasetSummary, JobResult, JobSpec
from llm_engineering.adapters.registry import AdapterCard, AdapterRegistry
from llm_engineering.errors import StateFileDamaged
from llm_engineering.index_store.service import IndexService
from llm_engineering.index_store.store.ledger import Ledger
from llm_engineering.storage import Storage
from tests.conftest import FACTS, QUERIES

DAMAGES = ("cut short after a checkpoint", "a broken header")


def damage(path: Path, how: str) -> None:
    """Damage a closed (checkpointed) SQLite file as a crash or a bad disk can."""
    if how == DAMAGES[0]:
        with path.open("r+b") as handle:
            handle.truncate(path.stat().st_size // 2)
    else:
        with path.open("r+b") as handle:
            handle.write(b"not sqlite at all")


def filled_state(data_dir: Path) -> Path:
    """A state file with a few hundred chunk rows and a job row, closed (so checkpointed)."""
    storage = Storage(data_dir / "state.sqlite")
    ledger = Ledger(storage)
    ledger.db.executemany(
        "INSERT INTO chunks (id, path, ordinal, text_hash, text) VALUES (?, '/d/a.md', ?, ?, ?)",
        [(f"c{i}", i, f"h{i}", "words " * 50) for i in range(300)],
    )
    store = JobStore(data_dir)
    store.create("faq", "base", {})
    store.close()
    storage.close()
    return data_dir / "state.sqlite"


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_state_file_is_named_with_the_command_that_remakes_it(
    tmp_path: Path, how: str
) -> None:
    path = filled_state(tmp_path / "data")
    damage(path, how)
    for opener in (lambda: Ledger(Storage(path)), lambda: JobStore(path.parent)):
        with pytest.raises(StateFileDamaged) as info:
            opener()
        message = str(info.value)
        assert str(path) in message and "is damaged" in message, message
        assert "llm-eng ingest --rebuild" in message and "jobs and adapters are kept" in message


def queued_job(store: JobStore, name: str) -> tuple[str, JobFolder]:
    """A job as start_job leaves it queued: its row and its job.json."""
    job, folder = store.create(name, "smollm2-135m-instruct", {})
    spec = JobSpec(
        id=job.id, name=name, base_model="smollm2-135m-instruct", base_cache=str(store.data_dir),
        hyperparameters=QLoRAConfig.from_dict({}),
        dataset=DatasetSummary(source="faq.jsonl", sha256="d" * 64, examples=12, formats={"chat": 12}),
    )  # fmt: skip
    folder.write_spec(spec)
    store.update(job.id, status="queued", dataset_sha256="d" * 64, examples=12)
    return job.id, folder


def finished_job(data_dir: Path) -> tuple[str, str]:
    """A succeeded job with its folder records and its registered adapter, as training leaves
    them; returns (job id, adapter spec)."""
    store = JobStore(data_dir)
    job_id, folder = queued_job(store, "faq")
    job = store.get(job_id)
    folder.write_result(JobResult("succeeded", step=30, total=30, final_loss=0.5, seconds=61.0))
    peft = data_dir / "peft-out"
    peft.mkdir()
    (peft / "adapter_config.json").write_text("{}")
    card = AdapterRegistry(data_dir / "adapters").add(
        AdapterCard(
            name="faq", version=0, base_model="smollm2-135m-instruct", base_gguf="",
            base_gguf_sha256="", dataset_sha256="d" * 64, dataset_examples=12,
            dataset_formats={"chat": 12}, hyperparameters={}, final_loss=0.5, best_loss=0.4,
            steps=30, train_tokens=900, job_id=job.id,
        ),
        peft,
        None,
    )  # fmt: skip
    store.update(job.id, status="succeeded", finished=time.time(), adapter=card.spec)
    store.close()
    return job.id, card.spec


def test_rebuild_remakes_a_damaged_state_file_and_keeps_the_jobs_and_adapters(
    settings_factory, counting_embedder, parse_pool, mixed_folder: Path
) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(watch=[mixed_folder])
    index = IndexService(settings, embedder=counting_embedder, parsers=parse_pool)
    index.ingest([mixed_folder])
    index.close()
    job_id, adapter = finished_job(settings.data_dir)
    store = JobStore(settings.data_dir)
    waiting, _ = queued_job(store, "later")
    store.close()
    card = settings.data_dir / "adapters" / "faq" / "1" / "card.json"
    card_text = card.read_text()
    damage(settings.state_path, DAMAGES[0])

    with pytest.raises(StateFileDamaged):
        IndexService(settings, embedder=counting_embedder, parsers=parse_pool)
    index = IndexService(settings, embedder=counting_embedder, parsers=parse_pool, rebuild=True)
    try:
        assert index.damaged_file is not None and index.damaged_file.is_file()
        report = index.ingest([mixed_folder])
        assert report.added == len(FACTS) and not report.failed
        hits, _ = index.search(QUERIES["md"], top_k=1)
        assert hits and FACTS["md"][1] in hits[0].text
    finally:
        index.close()

    store = JobStore(settings.data_dir)
    try:
        job, unfinished = store.get(job_id), store.get(waiting)
    finally:
        store.close()
    assert (job.name, job.status, job.adapter, job.examples) == ("faq", "succeeded", adapter, 12)
    # What it was doing is not known any more: it waits to be resumed by hand.
    assert unfinished.status == "interrupted" and "resume it" in (unfinished.error or "")
    assert card.read_text() == card_text


@pytest.mark.anyio
async def test_the_server_stays_up_and_its_tools_name_the_damaged_file(
    settings_factory, mixed_folder: Path
) -> None:  # type: ignore[no-untyped-def]
    from mcp import Client

    from llm_engineering.server.app import create_server

    settings = settings_factory(watch=[mixed_folder])
    path = filled_state(settings.data_dir)
    damage(path, DAMAGES[1])
    async with Client(create_server(settings)) as client:
        for tool, arguments in (
            ("index_status", {}),
            ("search_docs", {"query": "risotto"}),
            ("list_jobs", {}),
        ):
            result = await client.call_tool(tool, arguments)
            assert result.is_error, (tool, result.structured_content)
            text = " ".join(getattr(block, "text", "") for block in result.content)
            assert str(path) in text and "llm-eng ingest --rebuild" in text, (tool, text)


@pytest.mark.slow
def test_the_commands_name_the_damaged_file_and_ingest_rebuild_remakes_it(tmp_path: Path) -> None:
    from tests.test_cli import run

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text("# Notes\n\n" + FACTS["md"][1] + "\n")
    data = ["--data-dir", str(tmp_path / "data")]
    path = filled_state(tmp_path / "data")
    finished_job(tmp_path / "data")
    damage(path, DAMAGES[0])

    result = run("search", "xylophone", *data)  # as status, ls, show and a plain ingest
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"error: {path} is damaged" in result.stderr, result.stderr

    result = run("ingest", "--rebuild", str(docs), *data)
    assert result.returncode == 0, result.stderr
    assert "training jobs restored from their folders: 1" in result.stderr, result.stderr
    assert "added" in result.stdout and path.with_name("state.sqlite.damaged").is_file()
