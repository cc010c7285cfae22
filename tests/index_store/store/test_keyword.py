from pathlib import Path

from llm_engineering.index_store.store.keyword import KeywordIndex, analyze, fts_query, query_terms
from llm_engineering.index_store.store.ledger import ChunkRow, FileRow, Ledger
from llm_engineering.storage import Storage


def test_stop_words_are_dropped_unless_nothing_else_is_left() -> None:
    assert query_terms("What is the capital of France?") == ["capital", "france"]
    assert query_terms("what is it") == ["what", "is", "it"]


def test_fts_syntax_in_user_text_is_quoted_not_interpreted() -> None:
    assert fts_query('NEAR(a b) OR "x" *') == '"near" OR "b" OR "x"'
    assert fts_query("   ?!  ") is None


def test_bm25_filters_and_document_frequency_read_the_ledgers_chunks(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "state.sqlite")
    ledger, keyword = Ledger(storage), KeywordIndex(storage)
    for path, file_type, texts in [
        ("/docs/notes/a.md", "md", ["The walrus hauls out on ice floes", "Kelp forests"]),
        ("/docs/papers/b.pdf", "pdf", ["A walrus census from the air"]),
    ]:
        ledger.replace_file(
            FileRow(path, "/docs", path.removeprefix("/docs/"), file_type, 1, 1, "sha", "indexed"),
            [ChunkRow(f"{path}#{n}", path, n, f"{path}{n}", text) for n, text in enumerate(texts)],
        )
    match = fts_query("walrus")
    assert match is not None
    assert {cid for cid, _ in keyword.keyword_search(match, 10)} == {
        "/docs/notes/a.md#0",
        "/docs/papers/b.pdf#0",
    }
    assert [cid for cid, _ in keyword.keyword_search(match, 10, file_types=["pdf"])] == [
        "/docs/papers/b.pdf#0"
    ]
    assert keyword.filtered_chunk_ids("notes/", None) == [
        "/docs/notes/a.md#0",
        "/docs/notes/a.md#1",
    ]
    assert keyword.filtered_chunk_ids("/docs/papers", ["pdf"]) == ["/docs/papers/b.pdf#0"]
    scores = keyword.bm25_for(match, ["/docs/notes/a.md#0", "/docs/notes/a.md#1"])
    assert list(scores) == ["/docs/notes/a.md#0"] and scores["/docs/notes/a.md#0"] > 0
    walrus, kelp = analyze("walrus kelp")
    assert keyword.document_frequency([walrus, kelp, walrus]) == ({walrus: 2, kelp: 1}, 3)
    storage.close()


def test_a_query_whose_terms_hold_too_many_postings_keeps_its_rarest_terms(
    tmp_path: Path,
) -> None:
    """Over a budget of postings the keyword search reads only the query's rarest terms (a
    million chunks made a ten-word question read 300,000 rows); under it, the whole query."""
    storage = Storage(tmp_path / "state.sqlite")
    ledger, keyword = Ledger(storage), KeywordIndex(storage)
    texts = [f"common ordinary note {n}" for n in range(40)] + [
        "a rare walrus and a common note", "the narwhal tusk, common",
    ]  # fmt: skip
    path = "/docs/a.md"
    ledger.replace_file(
        FileRow(path, "/docs", "a.md", "md", 1, 1, "sha", "indexed"),
        [ChunkRow(f"{path}#{n}", path, n, f"h{n}", text) for n, text in enumerate(texts)],
    )
    match = fts_query("common walrus narwhal ordinary note")
    assert match is not None
    assert keyword.selective(match, budget=1000) == match  # 42 + 1 + 1 + 40 + 41 postings
    assert keyword.selective(match, budget=10) == '"walrus" OR "narwhal"'
    assert keyword.selective(match, budget=1) == '"walrus"'  # at least one term
    assert keyword.selective(fts_query("common") or "", budget=1) == '"common"'
    found = [cid for cid, _ in keyword.keyword_search(keyword.selective(match, budget=10), 5)]
    assert sorted(found) == [f"{path}#40", f"{path}#41"]
    storage.close()


def write(ledger: Ledger, path: str, texts: list[str]) -> None:
    ledger.replace_file(
        FileRow(path, "/docs", path[6:], "md", 1, 1, "sha", "indexed"),
        [ChunkRow(f"{path}#{n}", path, n, f"{path}{n}", t) for n, t in enumerate(texts)],
    )


def test_term_counts_are_kept_until_the_index_changes(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "state.sqlite")
    ledger, keyword = Ledger(storage), KeywordIndex(storage)

    write(ledger, "/docs/a.md", ["walrus tusks", "kelp"])
    assert keyword.document_frequency(analyze("walrus kelp")) == ({"walru": 1, "kelp": 1}, 2)
    seen: list[str] = []
    storage.db.set_trace_callback(seen.append)
    assert keyword.document_frequency(analyze("walrus"))[0] == {"walru": 1}
    assert not any("chunks_vocab" in sql for sql in seen), seen  # kept: no walk of postings
    write(ledger, "/docs/b.md", ["a walrus census"])  # a change of the index: counted again
    assert keyword.document_frequency(analyze("walrus"))[0] == {"walru": 2}
    assert any("chunks_vocab" in sql for sql in seen)
    storage.db.set_trace_callback(None)
    storage.close()


def test_counts_of_postings_are_kept_until_the_index_changes(tmp_path: Path) -> None:
    """Choosing a question's rarest terms counts each term's rows (1.5 ms a common term at 1M
    chunks): the counts are kept as term counts are, and counted again after a change."""
    storage = Storage(tmp_path / "state.sqlite")
    ledger, keyword = Ledger(storage), KeywordIndex(storage)

    write(ledger, "/docs/a.md", ["common walrus", "common kelp", "common note"])
    match = fts_query("common walrus")
    assert match is not None
    assert keyword.selective(match, budget=2) == '"walrus"'
    seen: list[str] = []
    storage.db.set_trace_callback(seen.append)
    assert keyword.selective(match, budget=2) == '"walrus"'
    assert not any("LIMIT" in sql for sql in seen), seen  # kept: no walk of postings
    write(
        ledger, "/docs/b.md", ["walrus", "walrus again", "a walrus census"]
    )  # now the commoner term
    assert keyword.selective(match, budget=2) == '"common"'
    assert any("LIMIT" in sql for sql in seen)
    storage.db.set_trace_callback(None)
    storage.close()
