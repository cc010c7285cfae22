import pytest

from llm_engineering.index_store.query.fusion import reciprocal_rank_fusion


def test_scores_are_the_sum_of_reciprocal_ranks() -> None:
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], k=60))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 63)
    assert fused["d"] == pytest.approx(1 / 62)


def test_an_item_found_by_both_lists_beats_one_found_by_one() -> None:
    order = [item for item, _ in reciprocal_rank_fusion([["x", "both"], ["y", "both"]], k=60)]
    assert order[0] == "both"


def test_ties_keep_first_seen_order() -> None:
    order = [item for item, _ in reciprocal_rank_fusion([["a", "b"], ["b", "a"]], k=1)]
    assert order == ["a", "b"]
    order = [item for item, _ in reciprocal_rank_fusion([["p"], ["q"]])]
    assert order == ["p", "q"]


def test_weights_scale_each_list() -> None:
    order = [item for item, _ in reciprocal_rank_fusion([["a"], ["b"]], weights=[1.0, 2.0])]
    assert order == ["b", "a"]
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], weights=[1.0, 2.0])


def test_duplicates_in_one_list_count_once_and_empty_lists_are_fine() -> None:
    fused = dict(reciprocal_rank_fusion([["a", "a", "b"], []], k=60))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 63)
    assert reciprocal_rank_fusion([]) == []
