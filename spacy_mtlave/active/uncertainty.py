"""How unsure the CRF is about a doc, from the CRF itself (active learning, issue 19).

For one doc with emission scores ``E`` [n, T] and the CRF's transition, start and end scores, a tag sequence ``y`` has
the score ``s(y) = start[y_0] + sum_i E[i, y_i] + sum_i transitions[y_i-1, y_i] + end[y_n-1]`` and the probability
``p(y) = exp(s(y) - log Z)``, ``log Z`` the log-sum-exp of the scores of all ``T ** n`` sequences (forward algorithm).

- **least confidence** (sequence level, Settles & Craven 2008): ``1 - p(y*)``, ``y*`` the Viterbi path the tagger
  outputs (with the BIO constraints when the tagger decodes with them). High when the model's best reading of the
  title is improbable. Texts are ranked by ``-log p(y*) = log Z - s(y*)``, which orders them exactly as ``1 - p(y*)``
  does but does not saturate: on long texts ``p(y*)`` rounds to 0 and ``1 - p`` would tie.
- **entropy**: the mean over tokens of the entropy (nats) of the token's marginal tag distribution
  ``p(y_i = t)`` (forward-backward: the marginals the tagger's ``span._.confidence`` comes from).

Both are computed in float64 from the tagger's emission scores and a numpy snapshot of its CRF
(:meth:`spacy_mtlave.ml.crf.CRF.to_numpy`); ``tests/active/test_uncertainty.py`` checks them against brute-force
enumeration of every tag sequence.
"""
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..ml.tagger_model import crf_module, length_buckets, pad_scores

STRATEGIES = ("least-confidence", "entropy", "random")


@dataclass
class Uncertainty:
    """One doc: the Viterbi path (tag ids), its probability, least confidence (1 - that), mean token entropy and
    ``-log`` of the path's probability (the least-confidence ranking key)."""

    path: List[int]
    path_probability: float
    least_confidence: float
    entropy: float
    neg_log_probability: float = 0.0

    def score(self, strategy: str) -> float:
        """The ranking score of ``strategy`` (higher = more uncertain); 0 for ``random``."""
        if strategy == "least-confidence":
            return self.neg_log_probability
        if strategy == "entropy":
            return self.entropy
        return 0.0


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top, axis=axis)


def log_partition(emissions: np.ndarray, mask: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """log Z per row [B] (float64; 0 for an empty row) by the forward algorithm, no constraints (the CRF's
    distribution, as its marginals)."""
    em = np.asarray(emissions, dtype=np.float64)
    trans, start, end = (np.asarray(a, dtype=np.float64) for a in (transitions, start, end))
    B, L, _ = em.shape
    if L == 0:
        return np.zeros(B)
    alpha = start[None, :] + em[:, 0]
    for i in range(1, L):
        nxt = _logsumexp(alpha[:, :, None] + trans[None, :, :], axis=1) + em[:, i]
        alpha = np.where(mask[:, i, None], nxt, alpha)
    out = _logsumexp(alpha + end[None, :], axis=1)
    return np.where(mask[:, 0], out, 0.0)


def path_scores(emissions: np.ndarray, mask: np.ndarray, paths: Sequence[Sequence[int]], transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Score s(y) of each row's tag sequence (float64; 0 for an empty row)."""
    out = np.zeros(len(paths))
    for r, path in enumerate(paths):
        if not len(path):
            continue
        y = np.asarray(path, dtype=np.int64)
        out[r] = float(start[y[0]]) + float(np.asarray(emissions[r, np.arange(len(y)), y], dtype=np.float64).sum())
        out[r] += float(np.asarray(transitions[y[:-1], y[1:]], dtype=np.float64).sum()) + float(end[y[-1]])
    return out


def mean_token_entropy(marginals: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean entropy (nats) of the unmasked positions' tag distributions [B]; 0 for an empty row."""
    p = np.asarray(marginals, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=2)
    n = mask.sum(axis=1)
    return np.where(n > 0, (h * mask).sum(axis=1) / np.maximum(n, 1), 0.0)


def crf_uncertainty(crf, emissions: np.ndarray, mask: np.ndarray, constrained: bool = True) -> List[Uncertainty]:
    """Per row of padded ``emissions`` [B, L, T] (``mask`` [B, L]): the uncertainty of a CRF given as a
    :class:`~spacy_mtlave.ml.crf_numpy.NumpyCRF` (or a torch :class:`~spacy_mtlave.ml.crf.CRF`, snapshotted)."""
    if hasattr(crf, "to_numpy"):
        crf = crf.to_numpy()
    emissions = np.asarray(emissions, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    paths = crf.decode(emissions, mask, constrained=constrained)
    log_z = log_partition(emissions, mask, crf.transitions, crf.start, crf.end)
    scores = path_scores(emissions, mask, paths, crf.transitions, crf.start, crf.end)
    neg_log = np.maximum(log_z - scores, 0.0)
    probs = np.exp(-neg_log)
    entropy = mean_token_entropy(crf.marginals(emissions, mask), mask)
    out = []
    for r, path in enumerate(paths):
        p = float(probs[r]) if len(path) else 1.0
        out.append(Uncertainty(list(path), p, 1.0 - p, float(entropy[r]), float(neg_log[r]) if len(path) else 0.0))
    return out


def tagger_uncertainty(tagger, docs: Sequence, scores: Optional[Sequence[np.ndarray]] = None) -> List[Uncertainty]:
    """Per doc, the uncertainty of an ``ave_tagger`` component about it. ``docs`` must have been through the
    components before the tagger (its tok2vec listener reads ``doc.tensor``), e.g. through the whole pipeline;
    ``scores``: the tagger's emission scores if already computed. An empty doc is certain (probability 1)."""
    docs = list(docs)
    out = [Uncertainty([], 1.0, 0.0, 0.0) for _ in docs]
    if not any(len(doc) for doc in docs):
        return out
    if scores is None:
        scores = tagger.model.predict(docs)
    scores = [tagger.model.ops.to_numpy(s) for s in scores]
    crf = crf_module(tagger.model).to_numpy()
    constrained = bool(tagger.cfg.get("bio_constraints", True))
    n_tags = len(tagger.tags)
    for bucket in length_buckets([len(s) for s in scores]):
        emissions, mask = pad_scores([scores[i] for i in bucket], n_tags)
        for i, u in zip(bucket, crf_uncertainty(crf, emissions, mask, constrained)):
            out[i] = u
    return out


def pipeline_uncertainty(nlp, tagger_name: str, texts: Iterable, batch_size: int = 256) -> Iterable[Tuple[object, Uncertainty]]:
    """(doc annotated by the whole pipeline, the tagger's uncertainty) per text, streamed in batches: one pass of
    the pipeline per doc, then only the tagger's emission layer again (its tok2vec listener reuses ``doc.tensor``)."""
    tagger = nlp.get_pipe(tagger_name)
    batch: List = []
    for text in texts:
        batch.append(text)
        if len(batch) >= batch_size:
            yield from _score_batch(nlp, tagger, batch)
            batch = []
    if batch:
        yield from _score_batch(nlp, tagger, batch)


def _score_batch(nlp, tagger, texts: List) -> List[Tuple[object, Uncertainty]]:
    docs = list(nlp.pipe(texts, batch_size=len(texts)))
    return list(zip(docs, tagger_uncertainty(tagger, docs)))
