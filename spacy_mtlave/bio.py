"""The BIO tagging scheme, in one place: tag names, parsing, spans <-> tags. ``O`` outside, ``B-<label>`` begins
and ``I-<label>`` continues an attribute value (the paper's scheme; BENCHMARK.md counts B-x and I-x as separate
tags)."""
from functools import lru_cache
from typing import Iterable, List, Optional, Tuple

OUTSIDE = "O"
SpanTuple = Tuple[int, int, str]


def bio_tags(labels: Iterable[str]) -> List[str]:
    """["O", "B-a", "I-a", "B-b", "I-b", ...] for the sorted distinct labels."""
    tags = ["O"]
    for label in sorted(set(labels)):
        tags.extend((f"B-{label}", f"I-{label}"))
    return tags


def spans_from_bio(tags: List[str]) -> List[Tuple[int, int, str]]:
    """(start, end_exclusive, label) spans of a BIO sequence; an "I-x" that
    does not continue an x span starts a new one."""
    spans: List[Tuple[int, int, str]] = []
    begin, current = 0, None
    for i, name in enumerate(tags):
        prefix, label = parse_tag(name)
        if current is not None and (prefix != "I" or label != current):
            spans.append((begin, i, current))
            current = None
        if prefix != "O" and current is None:
            begin, current = i, label
    if current is not None:
        spans.append((begin, len(tags), current))
    return spans


@lru_cache(maxsize=4096)
def parse_tag(name: str) -> Tuple[str, str]:
    """("O", "") for "O", else (prefix, label) for "B-<label>" / "I-<label>"."""
    if name == "O":
        return "O", ""
    prefix, sep, label = name.partition("-")
    if not sep or prefix not in ("B", "I") or not label:
        raise ValueError(f"invalid BIO tag {name!r}: expected 'O', 'B-<label>' or 'I-<label>'")
    return prefix, label


def bio_from_spans(n_tokens: int, spans: Iterable[SpanTuple]) -> List[str]:
    """BIO tags (length ``n_tokens``) of non-overlapping ``(start, end, label)`` token spans."""
    tags = [OUTSIDE] * n_tokens
    for start, end, label in sorted(spans):
        if not (0 <= start < end <= n_tokens) or not label:
            raise ValueError(f"invalid span ({start}, {end}, {label!r}) for {n_tokens} tokens")
        if any(t != OUTSIDE for t in tags[start:end]):
            raise ValueError(f"span ({start}, {end}, {label!r}) overlaps another span")
        tags[start] = f"B-{label}"
        tags[start + 1 : end] = [f"I-{label}"] * (end - start - 1)
    return tags




def tag_attribute(tag: str) -> Optional[str]:
    """The attribute of a ``B-x`` / ``I-x`` tag (``x``), None for ``O`` or anything else."""
    return tag[2:] if tag[:2] in ("B-", "I-") and len(tag) > 2 else None


def biluo_to_bio(tag: str) -> str:
    """One BILUO tag (spaCy's alignment) as BIO: U- and B- begin, L- and I- continue."""
    return OUTSIDE if tag == OUTSIDE else ("B-" if tag[0] in "BU" else "I-") + tag[2:]


def partial_allowed_tags(gold: List[str], tags: List[str], unlabelled: Iterable[str]) -> List[List[bool]]:
    """Which of ``tags`` each token may take when ``gold`` is incomplete: a token inside a known span keeps its gold
    tag; a token outside (gold ``O``) may be ``O`` or ``B-x`` / ``I-x`` for every label x in ``unlabelled``, except
    ``I-x`` right after a known span of x (a known span keeps its end). [n_tokens][n_tags]."""
    index = {tag: i for i, tag in enumerate(tags)}
    free = [False] * len(tags)
    free[index[OUTSIDE]] = True
    for label in unlabelled:
        for prefix in ("B", "I"):
            if f"{prefix}-{label}" in index:
                free[index[f"{prefix}-{label}"]] = True
    rows: List[List[bool]] = []
    for i, tag in enumerate(gold):
        if tag != OUTSIDE:
            row = [False] * len(tags)
            row[index[tag]] = True
        else:
            row = list(free)
            previous = tag_attribute(gold[i - 1]) if i else None
            if previous is not None and f"I-{previous}" in index:
                row[index[f"I-{previous}"]] = False
        rows.append(row)
    return rows
