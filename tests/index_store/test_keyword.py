from llm_engineering.index_store.keyword import fts_query, query_terms


def test_stop_words_are_dropped_unless_nothing_else_is_left() -> None:
    assert query_terms("What is the capital of France?") == ["capital", "france"]
    assert query_terms("what is it") == ["what", "is", "it"]


def test_fts_syntax_in_user_text_is_quoted_not_interpreted() -> None:
    assert fts_query('NEAR(a b) OR "x" *') == '"near" OR "b" OR "x"'
    assert fts_query("   ?!  ") is None
