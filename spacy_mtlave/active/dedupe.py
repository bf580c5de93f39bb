"""Exact and near duplicates among catalog titles, which repeat with small edits (another size, a colour, a pack count).

The rule (``select`` skips a candidate that is a duplicate of a text chosen before it, or of a ``known`` text):

- **normalised text**: Unicode NFKC, lower case, every run of digits becomes ``0``, every character that is neither a
  letter nor a digit a space, whitespace collapsed. Two texts with the same normalised text are **exact** duplicates
  (``Folgers Classic Roast, 12 oz`` and ``folgers classic roast 24 OZ``).
- **near duplicates**: the Jaccard similarity of the two normalised texts' word sets is at least ``threshold``
  (default 0.8: one word changed in a title of 9 or more words, one word added to a title of 4 or more words).
  ``threshold`` 1.0 keeps only the exact rule (and equal word sets).

Candidates are compared only with kept texts sharing a word (an inverted index), so a pool of a million titles costs
about (texts kept) x (texts sharing a word with them) set comparisons.
"""
import re
import unicodedata
from typing import Dict, FrozenSet, List, Optional, Set

DIGITS = re.compile(r"\d+")
NOT_WORD = re.compile(r"[^\w]|_")
SPACES = re.compile(r"\s+")
EXACT = "exact duplicate"
NEAR = "near duplicate"


def normalise(text: str) -> str:
    """The normalised text of the rule above."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = DIGITS.sub("0", text)
    text = NOT_WORD.sub(" ", text)
    return SPACES.sub(" ", text).strip()


def word_set(normalised: str) -> FrozenSet[str]:
    return frozenset(normalised.split())


def jaccard(a: FrozenSet[str], b: FrozenSet[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class DuplicateFilter:
    """Keeps the texts accepted so far; :meth:`check` says whether a new text duplicates one of them."""

    def __init__(self, threshold: float = 0.8) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"--near-duplicate must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.exact: Dict[str, int] = {}
        self.sets: List[FrozenSet[str]] = []
        self.index: Dict[str, Set[int]] = {}

    def check(self, text: str) -> Optional[str]:
        """``EXACT``, ``NEAR`` or None (not a duplicate of a kept text)."""
        norm = normalise(text)
        if norm in self.exact:
            return EXACT
        words = word_set(norm)
        candidates: Set[int] = set()
        for word in words:
            candidates |= self.index.get(word, set())
        for i in candidates:
            if jaccard(words, self.sets[i]) >= self.threshold:
                return NEAR
        return None

    def add(self, text: str) -> None:
        norm = normalise(text)
        if norm in self.exact:
            return
        words = word_set(norm)
        self.exact[norm] = len(self.sets)
        for word in words:
            self.index.setdefault(word, set()).add(len(self.sets))
        self.sets.append(words)
