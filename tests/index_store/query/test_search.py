from pathlib import Path

import pytest

from tests.conftest import FACTS


@pytest.fixture
def service(service_factory, mixed_folder: Path):  # type: ignore[no-untyped-def]
    nested = mixed_folder / "guides" / "deep"
    nested.mkdir(parents=True)
    (nested / "kayak.md").write_text("# Kayaks\n\nA kayak paddle guide for sea kayaking.\n")
    (mixed_folder / "guides" / "canoe.txt").write_text("A canoe paddle guide for lakes.\n")
    svc = service_factory()
    svc.ingest([mixed_folder])
    return svc


def names(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [Path(h.path).name for h in hits]


def test_each_mode_finds_the_obvious_match(service) -> None:  # type: ignore[no-untyped-def]
    for mode in ("hybrid", "dense", "keyword"):
        hits, _ = service.search("saffron risotto", top_k=3, mode=mode)
        assert names(hits)[0] == FACTS["html"][0], mode
    hits, _ = service.search("saffron risotto", top_k=3, mode="hybrid")
    assert set(hits[0].retrieved_by) == {"dense", "keyword"}


def test_results_carry_location_and_title(service) -> None:  # type: ignore[no-untyped-def]
    pdf = service.search("glacier calving", top_k=1, mode="keyword")[0][0]
    assert pdf.page == 2 and pdf.file_type == "pdf"
    md = service.search("xylophone", top_k=1, mode="keyword")[0][0]
    assert md.title == "Club notes" and md.heading == "Club notes › Music"
    source = Path(md.path).read_text().split("\n")
    assert "xylophone" in "\n".join(source[md.start_line - 1 : md.end_line])


def test_path_prefix_filters_relative_or_absolute(service, mixed_folder: Path) -> None:  # type: ignore[no-untyped-def]
    for prefix in ("guides/", str(mixed_folder / "guides")):
        for mode in ("hybrid", "dense", "keyword"):
            hits, _ = service.search("paddle guide", top_k=10, mode=mode, path_prefix=prefix)
            assert set(names(hits)) == {"kayak.md", "canoe.txt"}, (prefix, mode)
    hits, _ = service.search("paddle", top_k=10, path_prefix="guides/deep")
    assert names(hits) == ["kayak.md"]
    assert service.search("paddle", top_k=10, path_prefix="nowhere/")[0] == []


def test_file_types_filter_accepts_dots_and_case(service) -> None:  # type: ignore[no-untyped-def]
    hits, _ = service.search("paddle guide", top_k=10, file_types=[".TXT"])
    assert names(hits) == ["canoe.txt", "log.txt"] or set(names(hits)) <= {"canoe.txt", "log.txt"}
    assert all(h.file_type == "txt" for h in hits)
    hits, _ = service.search("anything", top_k=10, file_types=["md", "pdf"], mode="dense")
    assert {h.file_type for h in hits} <= {"md", "pdf"} and hits


def test_keyword_search_treats_query_syntax_as_text(service) -> None:  # type: ignore[no-untyped-def]
    for query in [
        '"unbalanced',
        "NEAR(",
        "a* OR",
        "col:umn",
        "^start",
        "(((",
        "'; DROP TABLE chunks; --",
    ]:
        hits, _ = service.search(query, top_k=3, mode="keyword")
        assert isinstance(hits, list)
    assert service.search("!!!", top_k=3, mode="keyword")[0] == []


def test_top_k_limits_results(service) -> None:  # type: ignore[no-untyped-def]
    assert len(service.search("guide", top_k=2)[0]) == 2
