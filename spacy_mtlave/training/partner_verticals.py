"""Partner verticals suggested from the training data alone, before any training.

For an anchor vertical v and a candidate u (both scores in [0, 1], directional):

- ``name``: label-name similarity. Each of v's attributes gets the best cosine similarity between the character
  k-gram counts of its name and those of one of u's attribute names (the k-grams of the coupling's label
  embeddings, case-folded); the average is weighted by how often v's attributes occur in training.
- ``density``: shortlist density. The share of v's attribute tokens (gold tag not ``O``) whose window embedding has
  a cosine similarity above ``thresh`` with the window embedding of some attribute token of u: the part of v that
  the coupling's shortlist L can tie to attribute values of u.
- ``score`` = (name + density) / 2; partners are ranked by it.
"""
import itertools
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy
import spacy

from ..ml.coupling_loss import label_kgrams
from ..ml.shortlist import build_shortlist, context_embeddings
from .corpus import corpus_paths, corpus_vertical, read_docbin


class _Vertical:
    """Attribute counts [label -> spans] and window embeddings of the attribute tokens [n_attr_tokens, d]."""

    def __init__(self, name: str, train_path: Path, vocab, window: int):
        docs = [doc for doc in read_docbin(train_path, vocab) if len(doc)]
        self.name = name
        self.labels = Counter(ent.label_ for doc in docs for ent in doc.ents)
        U, index = context_embeddings(docs, window) if docs else (numpy.zeros((0, vocab.vectors.shape[1]), "float32"), numpy.zeros((0, 2), "int32"))
        attribute = numpy.array([docs[d][t].ent_type != 0 for d, t in index], dtype=bool)
        self.U = U[attribute] if len(U) else U


def _kgram_counts(label: str, k: int) -> Counter:
    return Counter(label_kgrams(label.lower(), k))


def _cosine(a: Counter, b: Counter) -> float:
    dot = sum(count * b[g] for g, count in a.items())
    norm = (sum(c * c for c in a.values()) * sum(c * c for c in b.values())) ** 0.5
    return dot / norm if norm else 0.0


def name_similarity(labels: Counter, other: Sequence[str], k: int = 3) -> float:
    """Frequency-weighted mean over ``labels`` of the best k-gram cosine with a name in ``other`` ([0, 1])."""
    total = sum(labels.values())
    if not total or not other:
        return 0.0
    grams = [_kgram_counts(name, k) for name in other]
    return sum(n * max(_cosine(_kgram_counts(label, k), g) for g in grams) for label, n in labels.items()) / total


def check_settings(thresh: float, top: int = 1) -> None:
    """ValueError (one line) for a cosine threshold outside [-1, 1] or fewer than one partner shown."""
    if not -1.0 <= thresh <= 1.0:
        raise ValueError(f"--thresh is a cosine similarity, between -1 and 1, got {thresh}")
    if top < 1:
        raise ValueError(f"--top must be at least 1, got {top}")


def suggest_partners(corpora: Dict[str, Path], vectors: Path, thresh: float = 0.8, window: int = 1, k: int = 3) -> Dict[str, List[Dict]]:
    """{vertical: its other verticals ranked by score, each {"partner", "score", "name", "density"}} for the
    corpus folders of ``corpora`` ({vertical: folder with train.spacy}), using the word vectors of ``vectors``."""
    check_settings(thresh)
    if len(corpora) < 2:
        raise ValueError(f"suggest-partners needs at least two verticals, got {len(corpora)}")
    vocab = spacy.load(vectors).vocab
    if vocab.vectors.shape[1] == 0:
        raise ValueError(f"{vectors}: no word vectors")
    data = {v: _Vertical(v, corpus_paths(d)["train"], vocab, window) for v, d in corpora.items()}
    density: Dict[Tuple[str, str], float] = {}
    for a, b in itertools.combinations(data, 2):
        A, B = data[a], data[b]
        if len(A.U) and len(B.U):
            shortlist = build_shortlist(A.U, B.U, thresh, top_k=1)
            density[a, b] = float(numpy.mean(shortlist.partners_12.counts() > 0))
            density[b, a] = float(numpy.mean(shortlist.partners_21.counts() > 0))
        else:
            density[a, b] = density[b, a] = 0.0
    out: Dict[str, List[Dict]] = {}
    for v in data:
        rows = []
        for u in data:
            if u != v:
                name = name_similarity(data[v].labels, list(data[u].labels), k)
                rows.append({"partner": u, "score": (name + density[v, u]) / 2, "name": name, "density": density[v, u]})
        out[v] = sorted(rows, key=lambda r: (-r["score"], r["partner"]))
    return out


def corpus_folders(root: Path) -> Dict[str, Path]:
    """{vertical: folder} of the sub-folders of ``root`` holding train.spacy and dev.spacy (as ``convert`` writes)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: corpus folder not found")
    folders = {}
    for folder in sorted(p for p in root.iterdir() if (p / "train.spacy").is_file()):
        corpus_paths(folder)
        folders[corpus_vertical(folder / "train.spacy")] = folder
    if len(folders) < 2:
        raise ValueError(f"{root}: needs at least two vertical folders with train.spacy (found {len(folders)}); see 'convert'")
    return folders


def partner_pairs(suggestions: Dict[str, List[Dict]], k: int) -> List[Tuple[str, str]]:
    """The pairs of verticals to couple when each vertical takes its ``k`` best partners (union, sorted)."""
    return sorted({tuple(sorted((v, row["partner"]))) for v, rows in suggestions.items() for row in rows[:k]})


def partners_markdown(suggestions: Dict[str, List[Dict]], top: int = 3) -> str:
    """A Markdown table: each vertical's ``top`` partners with their scores."""
    lines = ["| vertical | rank | partner | score | name | density |", "|---|---|---|---|---|---|"]
    for v, rows in suggestions.items():
        for rank, row in enumerate(rows[:top], start=1):
            lines.append(f"| {v if rank == 1 else ''} | {rank} | {row['partner']} | {row['score']:.3f} | {row['name']:.3f} | {row['density']:.3f} |")
    return "\n".join(lines)
