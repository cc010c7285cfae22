import pytest

from llm_engineering.generation.citations import cited_numbers, is_refusal


def test_markers_are_read_in_order_without_repeats() -> None:
    assert cited_numbers("Paris [2]. It is big [1, 3] and old [2][4].") == [2, 1, 3, 4]
    assert cited_numbers("no markers, and [x] is not one") == []


@pytest.mark.parametrize(
    "text",
    [
        "The provided context does not contain the answer to this question.",
        "The passages don't mention the price.",
        "I don't know.",
        "This information is not in the context.",
        "There is no information about that.",
        "I cannot answer this from the sources.",
    ],
)
def test_refusals_are_recognized(text: str) -> None:
    assert is_refusal(text)


@pytest.mark.parametrize(
    "text", ["It costs 12 euros [1].", "Paris is the capital of France.", "The knot was not tied."]
)
def test_answers_are_not_refusals(text: str) -> None:
    assert not is_refusal(text)
