"""Questions written by the local model for sampled chunks: query pairs for a corpus without
titles or headings worth asking by, or beside them (``questions`` in a tuning request).

Slower than titles and headings (one generation a chunk: about a second each with the packaged
135M model on a CPU), and only as good as the model: a reply that is not one question of
ordinary length, or that repeats most of the passage's words, is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from llm_engineering.index_store.read.chunking import embedding_text
from llm_engineering.index_store.store.ledger import Ledger
from llm_engineering.retrieval.pairs import QueryPair

__all__ = ["generated_pairs"]

PROMPT = (
    "Passage:\n{passage}\n\nWrite one short question that a reader could ask and that this "
    "passage answers. Reply with the question only."
)
MAX_PASSAGE_CHARS = 1500
_WORDS = re.compile(r"\w+")
# A chat model's filler instead of a question about the passage.
_FILLER = re.compile(r"\b(your question|great question|i'm|i am|help you|can i|ask me)\b", re.I)


def _question(reply: str, passage: str) -> str | None:
    line = next((ln.strip(' "*-') for ln in reply.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(question|q)\s*[:.]\s*", "", line, flags=re.IGNORECASE)
    if not (10 <= len(line) <= 200) or not line.endswith("?") or _FILLER.search(line):
        return None
    words = {w.lower() for w in _WORDS.findall(line)}
    copied = words & {w.lower() for w in _WORDS.findall(passage)}
    return None if len(words) > 3 and len(copied) / len(words) > 0.9 else line


def generated_pairs(
    ledger: Ledger,
    generator: Any,
    count: int,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[QueryPair]:
    """Up to ``count`` pairs: a question the model wrote for each of ``count`` sampled chunks
    (spread over the corpus: chunk ids are hashes) and that chunk."""
    rows = ledger.db.execute(
        "SELECT c.id, c.text, c.heading FROM chunks c JOIN files f ON f.path = c.path "
        "WHERE f.status = 'indexed' AND length(c.text) >= 200 ORDER BY c.id LIMIT ?",
        (count,),
    ).fetchall()
    pairs = []
    for done, (chunk_id, text, heading) in enumerate(rows, start=1):
        if should_stop():
            break
        passage = embedding_text(text, heading)
        messages = [{"role": "user", "content": PROMPT.format(passage=passage[:MAX_PASSAGE_CHARS])}]
        reply = generator.chat(messages, 48, 0.0).text
        question = _question(reply, passage)
        if question is not None:
            pairs.append(QueryPair(question, (chunk_id,), text=passage))
        if progress is not None:
            progress(done, len(rows))
    return pairs
