"""Putting gold values on reference tokens, and the one overlap rule.

Three placements, one per kind of supervision:
- ``place_first_occurrences`` (values without offsets, BENCHMARK.md): longer values first, each at its
  first case-sensitive occurrence not overlapping a placed span, expanded to token boundaries; if the
  expanded span overlaps a placed span the value is dropped.
- ``place_all_occurrences`` (distant supervision): longer values first, every case-insensitive,
  token-aligned occurrence not overlapping a placed span.
- ``resolve_overlaps`` (given character offsets): expand to tokens, then longer wins, then earlier start.
Every value ends with one ``Outcome``; nothing is dropped without one.
"""
import re
from typing import List, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..vertical import set_vertical
from .records import EXPANDED, NOT_PLACED, OVERLAP_DROPPED, PLACED, Outcome

# (label, value, line, allowed character ranges or None for anywhere)
Value = Tuple[str, str, int, Optional[Sequence[Tuple[int, int]]]]
# (start_char, end_char, label, value, line)
CharSpan = Tuple[int, int, str, str, int]
EVERY_OCCURRENCE_OVERLAPS = "every occurrence overlaps an already placed span"


def make_doc(nlp: Language, text: str, vertical: str) -> Doc:
    """Reference tokens for ``text``, with ``doc._.vertical`` set."""
    doc = nlp.make_doc(text)
    set_vertical(doc, vertical)
    return doc


def set_gold(doc: Doc, spans: List[Span]) -> None:
    """The placed spans become ``doc.ents``; every other token is ``O``."""
    doc.set_ents(sorted(spans, key=lambda span: span.start), default="outside")


class _Occupancy:
    """Which tokens (and their characters) are covered by placed spans."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        self.tokens = bytearray(len(doc))
        self.chars = bytearray(len(doc.text))
        self.spans: List[Span] = []

    def chars_free(self, start: int, end: int) -> bool:
        return self.chars.find(1, start, end) == -1

    def tokens_free(self, span: Span) -> bool:
        return self.tokens.find(1, span.start, span.end) == -1

    def blocker(self, span: Span) -> Span:
        return next(s for s in self.spans if s.start < span.end and span.start < s.end)

    def add(self, span: Span) -> None:
        self.tokens[span.start : span.end] = b"\x01" * len(span)
        self.chars[span.start_char : span.end_char] = b"\x01" * (span.end_char - span.start_char)
        self.spans.append(span)


def _status(span: Span, value: str) -> Tuple[str, str]:
    if span.text == value:
        return PLACED, ""
    return EXPANDED, f"aligned to tokens as {span.text!r}"


def place_first_occurrences(doc: Doc, values: Sequence[Value]) -> Tuple[List[Span], List[Outcome]]:
    """BENCHMARK.md placement. Values of equal length keep their input order."""
    occupied = _Occupancy(doc)
    text = doc.text
    outcomes: List[Outcome] = []
    for label, value, line, ranges in sorted(values, key=lambda v: -len(v[1])):
        found_anywhere = found_allowed = False
        position = None
        start = text.find(value) if value else -1
        while start != -1:
            end = start + len(value)
            found_anywhere = True
            if ranges is None or any(lo <= start and end <= hi for lo, hi in ranges):
                found_allowed = True
                if occupied.chars_free(start, end):
                    position = start
                    break
            start = text.find(value, start + 1)
        if position is None:
            if found_allowed:
                status, detail = OVERLAP_DROPPED, EVERY_OCCURRENCE_OVERLAPS
            elif found_anywhere:
                status, detail = NOT_PLACED, "not in the text fields named by 'pid'"
            else:
                status, detail = NOT_PLACED, "not found in the text" if value else "empty value"
            outcomes.append(Outcome(line, label, value, status, detail))
            continue
        span = doc.char_span(position, position + len(value), label=label, alignment_mode="expand")
        if span is None or not len(span):
            outcomes.append(Outcome(line, label, value, NOT_PLACED, "covers no token"))
        elif not occupied.tokens_free(span):
            detail = f"tokens {span.text!r} overlap {occupied.blocker(span).text!r}"
            outcomes.append(Outcome(line, label, value, OVERLAP_DROPPED, detail))
        else:
            occupied.add(span)
            outcomes.append(Outcome(line, label, value, *_status(span, value)))
    return occupied.spans, outcomes


def _value_pattern(value: str) -> "re.Pattern[str]":
    return re.compile(r"\s+".join(re.escape(word) for word in value.split()), re.IGNORECASE)


def place_all_occurrences(doc: Doc, values: Sequence[Value]) -> Tuple[List[Span], List[Outcome]]:
    """Distant supervision: each value (longer first) is tagged at every occurrence that matches
    case-insensitively (any run of whitespace matches any run of whitespace), starts and ends on
    token boundaries and overlaps no placed span. ``ranges`` is ignored."""
    occupied = _Occupancy(doc)
    starts = {token.idx for token in doc}
    ends = {token.idx + len(token) for token in doc}
    text = doc.text
    outcomes: List[Outcome] = []
    for label, value, line, _ in sorted(values, key=lambda v: -len(v[1])):
        if not value.strip():
            outcomes.append(Outcome(line, label, value, NOT_PLACED, "empty value"))
            continue
        pattern = _value_pattern(value)
        placed = aligned = 0
        match = pattern.search(text)
        while match is not None:
            start, end = match.span()
            if start in starts and end in ends:
                aligned += 1
                if occupied.chars_free(start, end):
                    occupied.add(doc.char_span(start, end, label=label))
                    placed += 1
            match = pattern.search(text, start + 1)
        if placed:
            outcomes.append(Outcome(line, label, value, PLACED, f"{placed} occurrence(s)"))
        elif aligned:
            outcomes.append(Outcome(line, label, value, OVERLAP_DROPPED, EVERY_OCCURRENCE_OVERLAPS))
        else:
            outcomes.append(Outcome(line, label, value, NOT_PLACED, "not found on token boundaries"))
    return occupied.spans, outcomes


def resolve_overlaps(doc: Doc, candidates: Sequence[CharSpan]) -> Tuple[List[Span], List[Outcome]]:
    """Given character spans: expand each to reference tokens; identical (tokens, label) spans are
    kept once; then the longer span (in characters, after expansion) wins, ties go to the earlier
    start, then to the label name."""
    outcomes: List[Outcome] = []
    expanded: List[Tuple[Span, str, int]] = []
    for start, end, label, value, line in candidates:
        span = doc.char_span(start, end, label=label, alignment_mode="expand")
        if span is None or not len(span):
            outcomes.append(Outcome(line, label, value, NOT_PLACED, "covers no token"))
        else:
            expanded.append((span, value, line))
    occupied = _Occupancy(doc)
    kept = set()
    order = sorted(expanded, key=lambda c: (c[0].start_char - c[0].end_char, c[0].start_char, c[0].label_))
    for span, value, line in order:
        key = (span.start, span.end, span.label_)
        if key in kept:
            outcomes.append(Outcome(line, span.label_, value, *_status(span, value)))
        elif occupied.tokens_free(span):
            occupied.add(span)
            kept.add(key)
            outcomes.append(Outcome(line, span.label_, value, *_status(span, value)))
        else:
            detail = f"tokens {span.text!r} overlap {occupied.blocker(span).text!r}"
            outcomes.append(Outcome(line, span.label_, value, OVERLAP_DROPPED, detail))
    return occupied.spans, outcomes
