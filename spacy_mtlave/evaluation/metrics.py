"""Evaluation metrics of the benchmark (BENCHMARK.md, section "Metrics").

- Paper metric (Jain et al., Table 3): token-level BIO tags, ``B-x`` and ``I-x`` are separate tags. Macro-P
  and macro-R are plain means over the non-``O`` tags that occur in the gold tokens (a tag never predicted
  has precision 0); macro-F1 is the harmonic mean of macro-P and macro-R; accuracy counts ``O`` too.
- Span metric: exact-match ``(start, end, label)`` token spans, micro-averaged, as spaCy's
  ``Scorer.score_spans(examples, "ents")``.
- Rare-tag F1: mean F1 of the gold tags seen at most ``rare_max`` times in training.

All values are fractions in [0, 1]. Pure Python; no torch.
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set

from spacy.tokens import Doc
from spacy.training import Example

from ..bio import OUTSIDE, SpanTuple, bio_from_spans


def macro_f1(p: float, r: float) -> float:
    """Harmonic mean of ``p`` and ``r``; 0.0 when both are 0."""
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _ratio(num: int, den: int) -> float:
    return num / den if den > 0 else 0.0


def _check_tag(tag: Any, doc_index: int) -> None:
    if tag == OUTSIDE:
        return
    if not isinstance(tag, str) or tag[:2] not in ("B-", "I-") or len(tag) < 3:
        raise ValueError(f"doc {doc_index}: invalid BIO tag {tag!r} (expected 'O', 'B-<label>' or 'I-<label>')")


@dataclass
class TagCounts:
    """Token-level counts per tag (``O`` included): true positives, false positives, false negatives."""

    tp: Counter = field(default_factory=Counter)
    fp: Counter = field(default_factory=Counter)
    fn: Counter = field(default_factory=Counter)
    n_tokens: int = 0
    n_correct: int = 0
    n_docs: int = 0

    def add(self, gold: Sequence[str], pred: Sequence[str]) -> None:
        """Count one doc: ``gold`` and ``pred`` are its tags, one per token."""
        index = self.n_docs
        if len(gold) != len(pred):
            raise ValueError(f"doc {index}: {len(gold)} gold tags but {len(pred)} predicted tags")
        for tag in {*gold, *pred}:
            _check_tag(tag, index)
        for g, p in zip(gold, pred):
            if g == p:
                self.tp[g] += 1
                self.n_correct += 1
            else:
                self.fn[g] += 1
                self.fp[p] += 1
        self.n_tokens += len(gold)
        self.n_docs += 1

    def support(self, tag: str) -> int:
        """Number of gold tokens with ``tag``."""
        return self.tp[tag] + self.fn[tag]

    def scores(self, train_counts: Optional[Mapping[str, int]] = None, rare_max: int = 15) -> Dict[str, Any]:
        """Paper metric from the counts; see ``tag_scores``."""
        gold_tags = sorted(t for t in set(self.tp) | set(self.fn) if t != OUTSIDE and self.support(t) > 0)
        seen = set(gold_tags) | set(train_counts or {})
        all_tags = sorted(t for t in set(self.tp) | set(self.fn) | set(self.fp) if t != OUTSIDE)
        per_tag: Dict[str, Dict[str, Any]] = {}
        for tag in all_tags:
            tp, fp, fn = self.tp[tag], self.fp[tag], self.fn[tag]
            p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
            row: Dict[str, Any] = {"tp": tp, "fp": fp, "fn": fn, "p": p, "r": r, "f": macro_f1(p, r),
                                   "support": tp + fn}
            if train_counts is not None:
                row["train_count"] = int(train_counts.get(tag, 0))
            per_tag[tag] = row
        n = len(gold_tags)
        macro_p = sum(per_tag[t]["p"] for t in gold_tags) / n if n else 0.0
        macro_r = sum(per_tag[t]["r"] for t in gold_tags) / n if n else 0.0
        rare_tag_f1 = None
        if train_counts is not None:
            rare = [t for t in gold_tags if per_tag[t]["train_count"] <= rare_max]
            if rare:
                rare_tag_f1 = sum(per_tag[t]["f"] for t in rare) / len(rare)
        return {
            "macro_p": macro_p,
            "macro_r": macro_r,
            "macro_f1": macro_f1(macro_p, macro_r),
            "accuracy": _ratio(self.n_correct, self.n_tokens),
            "rare_tag_f1": rare_tag_f1,
            "n_tags": n,
            "n_tokens": self.n_tokens,
            "per_tag": per_tag,
            "unknown_tags": sorted(t for t in self.fp if t != OUTSIDE and t not in seen),
        }


def count_tags(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> TagCounts:
    """Per-tag tp/fp/fn and token totals over docs; ``gold[i]`` and ``pred[i]`` are doc i's tags."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold docs but {len(pred)} predicted docs")
    counts = TagCounts()
    for g, p in zip(gold, pred):
        counts.add(g, p)
    return counts


def tag_scores(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    train_counts: Optional[Mapping[str, int]] = None,
    rare_max: int = 15,
) -> Dict[str, Any]:
    """Paper metric over token BIO tags.

    Returns ``macro_p``, ``macro_r``, ``macro_f1``, ``accuracy``, ``rare_tag_f1`` (mean F1 of the gold tags with
    ``train_counts[tag] <= rare_max``, a tag missing from ``train_counts`` counting 0; None without
    ``train_counts`` or rare tag), ``n_tags`` (gold tags in the macro average; 0 gives macro values 0.0),
    ``n_tokens``, ``per_tag`` (every non-``O`` tag in gold or predictions: tp, fp, fn, p, r, f, support and, with
    ``train_counts``, train_count; support 0 means predicted only, not in the macro average) and
    ``unknown_tags`` (predicted tags seen neither in gold nor in ``train_counts``).
    """
    return count_tags(gold, pred).scores(train_counts, rare_max)


def span_scores(
    gold_spans: Sequence[Iterable[SpanTuple]], pred_spans: Sequence[Iterable[SpanTuple]]
) -> Dict[str, Any]:
    """Exact-match micro P/R/F over ``(start, end, label)`` token spans, one list per doc.

    Same semantics as spaCy's ``Scorer.score_spans(examples, "ents")``: a ratio with a zero denominator is 0.0,
    and all values are None when there is no gold and no predicted span at all.
    """
    if len(gold_spans) != len(pred_spans):
        raise ValueError(f"{len(gold_spans)} gold docs but {len(pred_spans)} predicted docs")
    total = Counter()
    per_type: Dict[str, Counter] = {}
    for gold_doc, pred_doc in zip(gold_spans, pred_spans):
        gold, pred = set(map(tuple, gold_doc)), set(map(tuple, pred_doc))
        for name, spans in (("tp", gold & pred), ("fp", pred - gold), ("fn", gold - pred)):
            total[name] += len(spans)
            for span in spans:
                per_type.setdefault(span[2], Counter())[name] += 1
        for span in gold | pred:
            per_type.setdefault(span[2], Counter())
    if sum(total.values()) == 0:
        return {"ents_p": None, "ents_r": None, "ents_f": None, "ents_per_type": None}

    def prf(c: Counter) -> Dict[str, float]:
        p, r = _ratio(c["tp"], c["tp"] + c["fp"]), _ratio(c["tp"], c["tp"] + c["fn"])
        return {"p": p, "r": r, "f": macro_f1(p, r)}

    scores = prf(total)
    return {
        "ents_p": scores["p"],
        "ents_r": scores["r"],
        "ents_f": scores["f"],
        "ents_per_type": {label: prf(c) for label, c in per_type.items()},
    }


def _spans(doc: Doc) -> List[SpanTuple]:
    return [(ent.start, ent.end, ent.label_) for ent in doc.ents]


def doc_tags(doc: Doc) -> List[str]:
    """BIO tags of ``doc.ents``, one per token."""
    return bio_from_spans(len(doc), _spans(doc))


def project_spans(predicted: Doc, reference: Doc) -> List[SpanTuple]:
    """``predicted.ents`` on ``reference`` tokens: character offsets expanded to token boundaries; a span that
    overlaps an earlier projected one is dropped."""
    projected: List[SpanTuple] = []
    taken: Set[int] = set()
    for ent in predicted.ents:
        span = reference.char_span(ent.start_char, ent.end_char, alignment_mode="expand")
        if span is None or len(span) == 0 or taken.intersection(range(span.start, span.end)):
            continue
        taken.update(range(span.start, span.end))
        projected.append((span.start, span.end, ent.label_))
    return projected


def score_examples(
    examples: Iterable[Example], train_counts: Optional[Mapping[str, int]] = None, rare_max: int = 15
) -> Dict[str, Any]:
    """``tag_scores`` and ``span_scores`` of ``example.predicted.ents`` against ``example.reference.ents``,
    on reference tokens (predicted spans are projected, see ``project_spans``)."""
    gold_spans: List[List[SpanTuple]] = []
    pred_spans: List[List[SpanTuple]] = []
    lengths: List[int] = []
    for i, eg in enumerate(examples):
        if eg.predicted.text != eg.reference.text:
            raise ValueError(f"example {i}: predicted text differs from reference text")
        gold_spans.append(_spans(eg.reference))
        pred_spans.append(project_spans(eg.predicted, eg.reference))
        lengths.append(len(eg.reference))
    gold_tags = [bio_from_spans(n, spans) for n, spans in zip(lengths, gold_spans)]
    pred_tags = [bio_from_spans(n, spans) for n, spans in zip(lengths, pred_spans)]
    return {**tag_scores(gold_tags, pred_tags, train_counts, rare_max), **span_scores(gold_spans, pred_spans)}


def train_tag_counts(docs: Iterable[Doc]) -> Dict[str, int]:
    """Token count per non-``O`` BIO tag of ``doc.ents`` over training docs."""
    counts: Counter = Counter()
    for doc in docs:
        counts.update(t for t in doc_tags(doc) if t != OUTSIDE)
    return dict(counts)
