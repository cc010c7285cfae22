"""Tune the embedding model on the user's corpus, build its index in the shadow, switch if better.

One run: pairs (the user's file, or titles and headings from the corpus) split into train and
held out; the live model fine-tuned on the train pairs (:mod:`.contrastive`; hard negatives
the user gave, or mined from the keyword index when asked); every chunk embedded again by the tuned model into a new
collection while the live one keeps answering and the watcher keeps indexing
(:func:`.shadow.fill`, in rounds); both collections scored on the held-out pairs; the
switch made only when the tuned one wins by ``min_gain`` nDCG@10, under the index's write
lock after a last round. The model it replaced and its collection stay for :meth:`rollback`.
Every run is registered in ``retrieval/models/vN/card.json``, switched or not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llm_engineering.errors import UserError
from llm_engineering.index_store.models.backends import make_embedder
from llm_engineering.index_store.models.precision import resolve
from llm_engineering.index_store.read.chunking import embedding_text
from llm_engineering.index_store.service import IndexService
from llm_engineering.index_store.store.vectors import VectorIndex
from llm_engineering.packaged import resolve_embedding_model
from llm_engineering.retrieval.contrastive import Pair, TuneConfig, TuneStep, tune_embedder
from llm_engineering.retrieval.live import EmbeddingIndex, LiveRecord, configured_index
from llm_engineering.retrieval.pairs import (
    QueryPair,
    corpus_pairs,
    load_user_pairs,
    split_heldout,
)
from llm_engineering.retrieval.shadow import Stopped, fill, query_vectors, relevant_paths, score

__all__ = ["RetrievalTuner", "TuningOptions", "TuningResult"]

log = logging.getLogger(__name__)

Report = Callable[[str, dict[str, Any]], None]
CANDIDATES = 16  # chunks of a positive file weighed to pick the one the query is about
ROUNDS = 5  # fill rounds while the index moves, before the last one under the lock
SETTLED = 64  # a round that adds fewer chunks than this ends the rounds


@dataclass(frozen=True)
class TuningOptions:
    pairs_path: Path | None = None
    """The user's pairs (JSONL); None: titles and headings from the corpus."""
    heldout_fraction: float = 0.2
    min_gain: float = 0.01
    """nDCG@10 the tuned index must gain on the held-out pairs to be switched to."""
    max_pairs: int = 4000
    hard_negatives: bool = False
    """Give each pair without negatives of its own the best keyword hit outside its positives'
    files. Off by default: on SciFact it doubled the tuning time and, at the default rate,
    added little (benchmarks/README.md, "Retrieval tuning")."""
    config: TuneConfig = field(default_factory=TuneConfig)
    pairs_label: str | None = None
    """How to name the pairs' file in the result (the job runs on its own copy)."""
    questions: int = 0
    """Without the user's pairs: also ask the local model for a question about this many
    sampled chunks (:mod:`.questions`; about a second each with the packaged model)."""


@dataclass
class TuningResult:
    status: str
    """``switched``, ``kept`` (the tuned index was not better by ``min_gain``) or ``cancelled``."""
    version: int
    model: str
    reason: str
    source: str
    pairs: int
    heldout: int
    live_before: str
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    shadow: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RetrievalTuner:
    """Runs tuning, switch and rollback against an open :class:`IndexService` (its writer).

    Args:
        index: The index; this process must be (or become) its writer.
        report: Told each event (``pairs``, ``step``, ``shadow``, ``scores``, ``switched``...).
        stop: Set to cancel; the run stops at the next step or batch and switches nothing.
    """

    def __init__(
        self, index: IndexService, report: Report | None = None, stop: threading.Event | None = None
    ):
        self.index = index
        self._report = report or (lambda event, values: log.info("%s %s", event, values))
        self._stop = stop or threading.Event()

    def _check(self) -> Path:
        settings = self.index.settings
        if settings.embedding_url:
            raise UserError(
                "the embedding model runs on a server (embedding_url): tune it there; "
                "retrieval tuning trains a model that runs in this process"
            )
        with self.index.exclusive():
            pass  # this process can write the index (IndexBusyError says who does instead)
        source = Path(resolve_embedding_model(self.index.live.model))
        if not (source / "config.json").is_file():
            raise UserError(
                f"the embedding model {self.index.live.model!r} is not a local model folder"
            )
        return source

    def run(self, options: TuningOptions) -> TuningResult:
        """Tune, build in the shadow, score, and switch when better.

        Raises:
            UserError: the model is not local, another process writes the index, or the pairs
                are bad or too few (DatasetError, every bad line named).
        """
        source = self._check()
        ledger = self.index.ledger
        if options.pairs_path is not None:
            roots = [*self.index.settings.watch, *map(Path, ledger.roots())]
            pairs, sha = load_user_pairs(options.pairs_path, ledger, roots)
            origin = options.pairs_label or str(options.pairs_path)
        else:
            pairs = corpus_pairs(ledger, options.max_pairs)
            origin = "corpus titles and headings"
            if options.questions:
                pairs += self._questions(options.questions)
                origin += " and questions the local model wrote"
            sha = hashlib.sha256(json.dumps([asdict(p) for p in pairs]).encode()).hexdigest()
        train, held = split_heldout(pairs[: options.max_pairs], options.heldout_fraction)
        self._report("pairs", {"source": origin, "train": len(train), "heldout": len(held)})
        examples = self._examples(train, options.hard_negatives)
        models = self.index.live_file.models
        version = 1 + max(
            (int(p.name[1:]) for p in models.glob("v*") if p.name[1:].isdigit()), default=0
        )
        folder = models / f"v{version}"
        before = self.index.live
        result = TuningResult(
            "cancelled",
            version,
            str(folder / "model"),
            "",
            origin,
            len(train),
            len(held),
            before.label,
        )

        def on_step(step: TuneStep) -> bool:
            left = (step.total_steps - step.step) * step.seconds / max(step.step, 1)
            self._report(
                "step",
                {"step": step.step, "total": step.total_steps, "loss": round(step.loss, 5),
                 "epoch": round(step.epoch, 3), "seconds": round(step.seconds, 1),
                 "eta_s": round(left, 1)},
            )  # fmt: skip
            return not self._stop.is_set()

        trained = tune_embedder(source, examples, folder / "model", options.config, on_step)
        negatives = sum(len(example.negatives) for example in examples)
        result.training = {
            **asdict(trained),
            "negatives": negatives,
            "config": asdict(options.config),
        }
        if trained.stopped:
            result.reason = "cancelled while training"
            return self._register(folder, result, sha)
        tuned = EmbeddingIndex(str(folder / "model"), _collection(before, version), version)
        try:
            vectors, embedder = self._shadow(tuned, result)
            result.scores = {
                "live": score(self.index.vectors, self.index.embedder(), ledger, held),
                "tuned": score(vectors, embedder, ledger, held),
            }
            self._report("scores", result.scores)
            gain = result.scores["tuned"]["nDCG@10"] - result.scores["live"]["nDCG@10"]
            if gain >= options.min_gain:
                self._switch(tuned, vectors, embedder)
                result.status = "switched"
                result.reason = f"nDCG@10 on {len(held)} held-out pairs rose by {gain:+.4f}"
            else:
                vectors.drop()
                result.status = "kept"
                result.reason = (
                    f"nDCG@10 on {len(held)} held-out pairs changed by {gain:+.4f}, under the "
                    f"{options.min_gain} needed: the live index stays"
                )
        except Stopped:
            VectorIndex(self.index.index_settings(tuned)).drop()
            result.reason = "cancelled while building the new index"
        self._report(result.status, {"reason": result.reason})
        return self._register(folder, result, sha)

    def _questions(self, count: int) -> list[QueryPair]:
        from llm_engineering.generation.models import open_generator
        from llm_engineering.retrieval.questions import generated_pairs

        generator = open_generator(self.index.settings)
        try:
            return generated_pairs(
                self.index.ledger, generator, count,
                lambda done, of: self._report("questions", {"asked": done, "of": of}),
                self._stop.is_set,
            )  # fmt: skip
        finally:
            generator.close()

    def _examples(self, train: Sequence[QueryPair], negatives: bool) -> list[Pair]:
        """Training texts: each pair's positive (the chunk of a positive file the live model
        ranks first for the query) and one hard negative (the user's, else the best keyword
        hit outside the positives' files)."""
        embedder = self.index.embedder()
        ledger = self.index.ledger
        queries = [pair.query for pair in train]
        vectors = query_vectors(embedder, queries)
        examples = []
        for pair, vector in zip(train, vectors, strict=True):
            positive = pair.text or self._closest(vector, pair.positives)
            chosen: list[str] = []
            if pair.negatives:
                chosen.append(self._closest(vector, pair.negatives))
            elif negatives:
                avoid = relevant_paths(ledger, pair)
                hits, _ = self.index.search(pair.query, top_k=10, mode="keyword")
                chosen += [embedding_text(h.text, h.heading) for h in hits if h.path not in avoid][
                    :1
                ]
            examples.append(Pair(pair.query, positive, tuple(chosen)))
        return examples

    def _closest(self, query: Sequence[float], ids: Sequence[str]) -> str:
        candidates = list(ids[:CANDIDATES])
        stored = self.index.vectors.embeddings(candidates)

        def similarity(chunk_id: str) -> float:
            vector = stored.get(chunk_id)
            return (
                -2.0 if vector is None else sum(a * b for a, b in zip(query, vector, strict=True))
            )

        best = max(candidates, key=similarity)
        chunk = self.index.ledger.chunks_by_ids([best])[best]
        return embedding_text(chunk.text, chunk.heading)

    def _embedder(self, target: EmbeddingIndex, vectors: VectorIndex) -> Any:
        if target.version is None and self.index.given_embedder is not None:
            return self.index.given_embedder
        settings = self.index.index_settings(target)
        recorded = vectors.recorded_precision
        return make_embedder(
            settings, resolve(settings.embedding_precision, recorded, vectors.location)
        )

    def _shadow(self, target: EmbeddingIndex, result: TuningResult) -> tuple[VectorIndex, Any]:
        vectors = VectorIndex(self.index.index_settings(target))
        self._drop_stale(vectors)
        vectors.drop()  # a run that stopped part way left it
        embedder = self._embedder(target, vectors)
        vectors.ensure(target.model, embedder.dimension, getattr(embedder, "precision", None))
        started = time.perf_counter()
        added = 0
        for round_ in range(ROUNDS):
            done, _ = fill(vectors, embedder, self.index.ledger, self._progress, self._stop)
            added += done
            if done < SETTLED and round_:
                break
        result.shadow = {
            "collection": target.collection,
            "chunks": vectors.count(),
            "embedded": added,
            "seconds": round(time.perf_counter() - started, 1),
        }
        return vectors, embedder

    def _drop_stale(self, vectors: VectorIndex) -> None:
        """Collections of tuned models that are neither live nor kept for a rollback: a run
        that crashed while building left them."""
        record = self.index.live_file.read()
        keep = {self.index.live.collection}
        if record is not None and record.previous is not None:
            keep.add(record.previous.collection)
        base = _collection(self.index.live, 0).removesuffix("-v0")
        for name in vectors.collections():
            suffix = name.removeprefix(f"{base}-v")
            if name not in keep and suffix != name and suffix.isdigit():
                VectorIndex(self.index.settings.model_copy(update={"collection": name})).drop()

    def _progress(self, done: int, total: int) -> None:
        self._report("shadow", {"embedded": done, "of": total})

    def _switch(self, target: EmbeddingIndex, vectors: VectorIndex, embedder: Any) -> None:
        """Point searches and ingest at ``target``; keep the index left as the previous one and
        drop the one before it."""
        index = self.index
        with index.exclusive():
            fill(vectors, embedder, index.ledger)
            record = index.live_file.read()
            left = index.live
            older = record.previous if record is not None else None
            if older is not None and older.collection not in (left.collection, target.collection):
                VectorIndex(index.index_settings(older)).drop()
            configured = configured_index(index.settings)
            index.live_file.write(LiveRecord(configured.model, configured.collection, target, left))
            index.switch_index(target, vectors, embedder)
        self._report("live", {"model": target.label, "previous": left.label})

    def rollback(self) -> EmbeddingIndex:
        """Go back to the index the last switch left (and a second rollback comes back again).

        Raises:
            UserError: no switch was made under the current configuration.
        """
        record = self.index.live_file.read()
        if record is None or record.previous is None or record.live != self.index.live:
            raise UserError("nothing to roll back: no tuned embedding model was switched to here")
        target = record.previous
        vectors = VectorIndex(self.index.index_settings(target))
        embedder = self._embedder(target, vectors)
        vectors.ensure(target.model, embedder.dimension, getattr(embedder, "precision", None))
        fill(
            vectors, embedder, self.index.ledger, self._progress
        )  # what changed since, outside the lock
        self._switch(target, vectors, embedder)
        return target

    def _register(self, folder: Path, result: TuningResult, sha: str) -> TuningResult:
        if result.status == "cancelled":  # nothing to keep: the number is free again
            shutil.rmtree(folder, ignore_errors=True)
            return result
        folder.mkdir(parents=True, exist_ok=True)
        card = {
            "name": f"retrieval-v{result.version}",
            "base_model": result.live_before,
            "dataset_sha256": sha,
            "created": time.time(),
            **result.to_dict(),
        }
        if result.status != "switched":
            shutil.rmtree(folder / "model", ignore_errors=True)  # only the card of a model not used
            card["model"] = None
        (folder / "card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
        return result


def _collection(before: EmbeddingIndex, version: int) -> str:
    base = before.collection.rsplit("-v", 1)[0] if before.version is not None else before.collection
    return f"{base[:55]}-v{version}"
