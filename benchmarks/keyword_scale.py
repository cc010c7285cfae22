"""Keyword search over a large index, against the plain FTS5 query, in the same process.

On an index ``scale.py`` built (default: its 1M chunks), for SciFact claims: the product's
keyword path (:meth:`KeywordIndex.selective` choosing the question's rarest terms, then
:meth:`KeywordIndex.keyword_search`) against the raw baseline, one FTS5 statement that joins
every matching row to ``chunks`` before its sort (what ``keyword_search`` ran before). The
counts ``selective`` keeps are timed cold (the first pass) and kept (the second). Same
results are checked. No MCP, no server: ``scale.py`` measures ``search_docs`` over stdio.

Usage: python benchmarks/keyword_scale.py [--data .bench-cache/scale/data-1000000] [--queries 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
RAW = (
    "SELECT c.id, bm25(chunks_fts, 1.0, 1.0) AS rank FROM chunks_fts "
    "JOIN chunks c ON c.rowid = chunks_fts.rowid WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=ROOT / ".bench-cache" / "scale" / "data-1000000"
    )
    parser.add_argument("--queries", type=int, default=60)
    args = parser.parse_args()
    from scale import percentiles

    from llm_engineering.index_store.store.keyword import KeywordIndex, fts_query
    from llm_engineering.storage import Storage

    storage = Storage(args.data / "state.sqlite")
    chunks = storage.db.execute("SELECT n FROM tallies WHERE name = 'chunks'").fetchone()[0]
    claims = [json.loads(line)["text"] for line in (ROOT.parent / "shared" / "data" / "scifact" / "queries.jsonl").open()]  # fmt: skip
    matches = [m for m in map(fts_query, claims[: args.queries]) if m]
    keyword = KeywordIndex(storage)
    for match in matches:  # the pages of the index in the cache, as a running server has them
        storage.db.execute(RAW, (keyword.selective(match), 50)).fetchall()
    keyword = KeywordIndex(storage)  # nothing kept
    report: dict[str, object] = {"data": str(args.data), "chunks": chunks, "queries": len(matches)}
    for name in ("product, counts cold", "product, counts kept"):
        choose, search, raw, whole = [], [], [], []
        for match in matches:
            begun = time.perf_counter()
            chosen = keyword.selective(match)
            chose = time.perf_counter()
            found = keyword.keyword_search(chosen, 50)
            done = time.perf_counter()
            baseline = storage.db.execute(RAW, (chosen, 50)).fetchall()
            raw.append((time.perf_counter() - done) * 1000)
            choose.append((chose - begun) * 1000)
            search.append((done - chose) * 1000)
            whole.append((done - begun) * 1000)
            assert [cid for cid, _ in found] == [cid for cid, _ in baseline], match
        report[name] = {
            "choose_terms_ms": percentiles(choose),
            "search_ms": percentiles(search),
            "whole_ms": percentiles(whole),
            "raw_join_then_sort_ms": percentiles(raw),
            "raw_over_search_p50": round(statistics.median(raw) / statistics.median(search), 2),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
