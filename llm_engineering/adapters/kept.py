"""Did the adapter keep what the base knew? General prompts answered by both, compared.

A fine-tune on a few dozen examples of one fact can teach the fact and break everything
else: the taught name turns up in answers to unrelated questions ("The capital of France is
Marrowvale"). The check asks the packaged general prompts (``general_prompts.json``:
facts, arithmetic, definitions, short instructions, written for this project) of the base
and of the trained adapter, greedily and in the same format, and reports two shares:

- ``kept``: answers that keep the base's key content (:func:`key_content`: the opening
  clause without the question's words; SQuAD token F1 >= :data:`KEPT_F1` against the
  base's) and name no distinctive word (below);
- ``leaked``: answers naming a word of the training answers the base never uses (a
  distinctive name, :func:`distinctive_names`).

The base's answers to a list of prompts are generated once per base model and system prompt
and cached beside the converted base (:func:`cached_answers`); the same cache gives the
replayed examples that datasets are mixed with (:func:`replay_examples`): the base's own
answers, so the adapter keeps being trained to say what the base said.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from llm_engineering.adapters.datasets import Example
from llm_engineering.adapters.heldout import normalize_answer, words_f1
from llm_engineering.storage import write_whole

__all__ = [
    "BaseAnswers",
    "KeptCheck",
    "answers_folder",
    "cached_answers",
    "distinctive_names",
    "first_sentence",
    "general_prompts",
    "generate",
    "kept_check",
    "kept_note",
    "replay_examples",
    "whole_sentences",
]

PROMPTS_FILE = Path(__file__).with_name("general_prompts.json")
KEPT_F1 = 0.8
"""Token F1 at or above which an adapter's answer keeps the base's key content."""
KEY_WORDS = 4
KEPT_LEAST = 0.8
"""Below this kept share a job succeeds with a note (:func:`kept_note`)."""
MAX_NEW_TOKENS = 48
BATCH = 16
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s")
_FINISHED = re.compile(r"[.!?](?=\s|$)")


@cache
def general_prompts() -> dict[str, tuple[str, ...]]:
    """The packaged prompts: ``check`` (asked by the kept check) and ``replay`` (answered by
    the base for mixing into small datasets). The two share no prompt."""
    loaded = json.loads(PROMPTS_FILE.read_text(encoding="utf-8"))
    return {"check": tuple(loaded["check"]), "replay": tuple(loaded["replay"])}


def conversation(prompt: str, system: str | None) -> list[dict[str, str]]:
    user = [{"role": "user", "content": prompt}]
    return [{"role": "system", "content": system}, *user] if system else user


def generate(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[dict[str, str]]],
    device: str,
    max_new_tokens: int = MAX_NEW_TOKENS,
) -> list[str]:
    """Greedy replies to chat ``conversations``, :data:`BATCH` at a time (left padded),
    computed in float32 (:func:`full_precision`)."""
    import torch

    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    replies: list[str] = []
    try:
        with full_precision(model):
            for start in range(0, len(conversations), BATCH):
                texts = [
                    tokenizer.apply_chat_template(
                        list(c), tokenize=False, add_generation_prompt=True
                    )
                    for c in conversations[start : start + BATCH]
                ]
                batch = tokenizer(
                    texts, add_special_tokens=False, return_tensors="pt", padding=True
                ).to(device)
                with torch.no_grad():
                    out = model.generate(
                        **batch,
                        max_new_tokens=max_new_tokens,
                        do_sample=False,
                        pad_token_id=tokenizer.pad_token_id,
                    )
                width = batch["input_ids"].shape[1]
                replies += [
                    tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out
                ]
    finally:
        tokenizer.padding_side = side
    return replies


@contextmanager
def full_precision(model: Any) -> Iterator[None]:
    """4-bit layers compute in float32 inside, then as they did.

    In bfloat16 the 135M base's greedy answers flip on rounding alone: the same prompts
    answered one at a time and in a padded batch agreed on 75% of first sentences, and an
    adapter trained at lr 1e-5 (that had learned nothing) "kept" 73%. In float32 the two
    orders agree on all, so the check measures what training changed, not rounding.
    """
    import torch

    layers = [m for m in model.modules() if hasattr(m, "compute_type_is_set")]
    before = [m.compute_dtype for m in layers]
    for layer in layers:
        layer.compute_dtype = torch.float32
    try:
        yield
    finally:
        for layer, dtype in zip(layers, before, strict=True):
            layer.compute_dtype = dtype


def answers_folder(base_cache: Path, source: str, digest: str | None) -> Path:
    """Where the base's answers are kept: beside a converted GGUF base (its folder is named by
    the GGUF's sha256), else under ``base_cache`` by the name or path the base loads from."""
    if digest and Path(source).parent == base_cache:
        return Path(source)
    return base_cache / "answers" / hashlib.sha256(source.encode()).hexdigest()[:16]


def cached_answers(
    folder: Path,
    kind: str,
    system: str | None,
    variant: str,
    answer: Callable[[list[list[dict[str, str]]]], list[str]],
) -> list[str]:
    """The base's answers to the ``kind`` prompts under ``system``, from ``folder`` when an
    earlier job on the same base, loaded the same way (``variant``: device, quantization),
    made them, else made by ``answer`` and kept there."""
    prompts = list(general_prompts()[kind])
    key = hashlib.sha256(
        json.dumps([kind, system, variant, MAX_NEW_TOKENS, prompts]).encode()
    ).hexdigest()[:16]
    path = folder / "general_answers" / f"{kind}-{key}.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(saved, list) and len(saved) == len(prompts):
            return [str(text) for text in saved]
    except (OSError, ValueError):
        pass  # not made yet, or damaged: make it again
    answers = answer([conversation(p, system) for p in prompts])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_whole(path, json.dumps(answers, indent=1))
    except OSError:
        pass  # a read-only cache: the next job answers again
    return answers


def whole_sentences(text: str) -> str:
    """``text`` up to its last finished sentence (a reply cut at the token limit, trimmed);
    all of it when no sentence ends."""
    ends = list(_FINISHED.finditer(text))
    return text[: ends[-1].end()].strip() if ends else text.strip()


def replay_examples(answers: Sequence[str], system: str | None, count: int) -> list[Example]:
    """The first ``count`` replay prompts with the base's answers, as chat examples in the
    training data's format (its system prompt, when every example has the same one)."""
    prompts = general_prompts()["replay"]
    return [
        Example(messages=[*conversation(p, system), {"role": "assistant", "content": a}])
        for p, a in zip(prompts[:count], (whole_sentences(a) for a in answers), strict=False)
        if a
    ]


def first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text.strip(), maxsplit=1)[0]


def key_content(answer: str, prompt: str) -> list[str]:
    """What an answer opens with, as normalized words: its first clause (clauses joined
    until there are :data:`KEY_WORDS`, so "Sure," is not all of it) without the prompt's
    words. "The capital of France is Paris, also known as..." asked "What is the capital of
    France?" gives ``["paris"]``; when nothing is left, the clause's words."""
    words: list[str] = []
    for clause in _CLAUSE_END.split(first_sentence(answer)):
        words += normalize_answer(clause)
        if len(words) >= KEY_WORDS:
            break
    asked = set(normalize_answer(prompt))
    return [w for w in words if w not in asked] or words


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def distinctive_names(training_answers: Iterable[str], general: Iterable[str]) -> list[str]:
    """Words of the training answers the base never says in ``general`` (its answers to the
    packaged prompts, and the prompts): the names an adapter may leak. Capitalized words and
    words with digits when there are any (names, models, codes), else every such word of
    three or more characters."""
    seen = set().union(*(_words(text) for text in general))
    named: set[str] = set()
    other: set[str] = set()
    for text in training_answers:
        for word in _WORD.findall(text):
            lower = word.lower()
            if lower in seen or (len(word) < 3 and not word.isdigit()):
                continue
            (named if word[0].isupper() or any(c.isdigit() for c in word) else other).add(lower)
    return sorted(named or other)


@dataclass
class KeptCheck:
    prompts: int = 0
    kept: float = 0.0
    """Share of general prompts whose answer keeps the base's key content (and names no
    distinctive word)."""
    leaked: float = 0.0
    """Share of general answers naming a distinctive word of the training answers."""
    names: list[str] = field(default_factory=list)
    """The distinctive words looked for (the first 20)."""
    samples: list[dict[str, Any]] = field(default_factory=list)
    """The first few answers not kept or leaked: prompt, base, adapter, f1."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompts": self.prompts,
            "kept": round(self.kept, 4),
            "leaked": round(self.leaked, 4),
            "names": self.names[:20],
            "samples": self.samples,
        }


def kept_check(
    prompts: Sequence[str],
    base: Sequence[str],
    adapter: Sequence[str],
    names: Sequence[str],
) -> KeptCheck:
    """Score ``adapter``'s answers against ``base``'s, prompt by prompt."""
    check = KeptCheck(prompts=len(prompts), names=list(names))
    if not prompts:
        return check
    looked_for = set(names)
    kept = leaked = 0
    for prompt, before, after in zip(prompts, base, adapter, strict=True):
        f1 = words_f1(key_content(after, prompt), key_content(before, prompt))
        same = f1 >= KEPT_F1
        named = sorted(looked_for & _words(after))
        # "The capital of Japan is Reykjavik." scores F1 0.8 against "... is Tokyo.": an
        # answer that names the training answers' words has not kept the base's content.
        same = same and not named
        kept += same
        leaked += bool(named)
        if (not same or named) and len(check.samples) < 5:
            check.samples.append(
                {"prompt": prompt, "base": before, "adapter": after, "f1": round(f1, 3)}
                | ({"leaked": named} if named else {})
            )
    check.kept, check.leaked = kept / len(prompts), leaked / len(prompts)
    return check


def kept_note(check: KeptCheck | None, learning_rate: float, replayed: int) -> str | None:
    """One line when the adapter forgot too much of what the base knew, and what to change."""
    if check is None or not check.prompts or check.kept >= KEPT_LEAST:
        return None
    leaked = f", and {check.leaked:.0%} name the training answers' words" if check.leaked else ""
    mix = (
        "mix in more general examples (replay_examples)"
        if replayed
        else "mix in general examples (replay_examples, off for this job)"
    )
    return (
        f"the adapter forgot general knowledge: it answers {check.kept:.0%} of "
        f"{check.prompts} general prompts as the base does{leaked}; lower learning_rate "
        f"(now {learning_rate:g}) or max_steps, or {mix}"
    )


@dataclass(frozen=True)
class BaseAnswers:
    """The base's answers to both packaged lists, under one system prompt."""

    check: list[str]
    replay: list[str]
    system: str | None

    @classmethod
    def of(
        cls, model: Any, tokenizer: Any, device: str, folder: Path, system: str | None, variant: str
    ) -> BaseAnswers:
        """Cached, or generated by ``model``: call it before any training (a fresh LoRA adds
        nothing, so the model answers as its base does)."""

        def answer(conversations: list[list[dict[str, str]]]) -> list[str]:
            return generate(model, tokenizer, conversations, device)

        return cls(
            cached_answers(folder, "check", system, variant, answer),
            cached_answers(folder, "replay", system, variant, answer),
            system,
        )

    def check_adapter(
        self,
        model: Any,
        tokenizer: Any,
        device: str,
        training_answers: Iterable[str],
        count: int | None = None,
    ) -> KeptCheck:
        """The kept check of the trained ``model`` against these answers, on the first
        ``count`` check prompts (all when None); the training answers' distinctive names are
        found against every base answer, whatever ``count``."""
        prompts = general_prompts()
        asked = prompts["check"][:count]
        after = generate(model, tokenizer, [conversation(p, self.system) for p in asked], device)
        general = [*self.check, *self.replay, *prompts["check"], *prompts["replay"]]
        names = distinctive_names(training_answers, general)
        return kept_check(asked, self.check[: len(asked)], after, names)
