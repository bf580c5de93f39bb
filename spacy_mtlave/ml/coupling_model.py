"""Registered architectures of the coupling (``spacy_mtlave.CouplingModel.v1-v3``, ``GroupCouplingModel.v1-v2``): a
tok2vec listener and the wrapped torch loss of :mod:`spacy_mtlave.ml.coupling_loss`, sized by the component at
initialize. The model's ``attrs`` say how pairs of L are used (``pairing``, ``reduction``) and which score is compared."""
from typing import Dict, List, Literal, Optional, Tuple

import numpy
import torch
from spacy import util
from spacy.tokens import Doc
from thinc.api import ArgsKwargs, Model, PyTorchWrapper, xp2torch
from thinc.types import Floats2d

from .coupling_loss import CouplingLoss, PairBatch, PairwiseCouplingLoss
from .device import module_device

PAIRINGS = {
    # v1/v2 architectures: ``batch_size`` pairs drawn per direction among the batch's contexts, TCE summed
    "drawn": {"pairing": "drawn", "reduction": "sum"},
    # v3 (and GroupCouplingModel.v2): every pair of L (one symmetric set) with both contexts in the batch, all four
    # terms of TCE on each pair, the loss averaged over the pairs used
    "all": {"pairing": "all", "reduction": "mean"},
}
SCORES = ("emission", "log_softmax", "marginal")
ScoreKind = Literal["emission", "log_softmax", "marginal"]



@util.registry.architectures("spacy_mtlave.CouplingModel.v1")
def build_coupling_model(tok2vec: Model[List[Doc], List[Floats2d]], k: int = 3, n_buckets: int = 4096, label_dim: int = 32) -> Model:
    """A tok2vec listener (the coupling reuses the batch's shared encoder pass) and a wrapped :class:`CouplingLoss`,
    sized for the two taggers' tag sets when the component is initialized. Label k-gram table initialised with
    std 0.1 (label attention starts nearly uniform). Pairs of L drawn per direction, TCE summed, raw emissions."""
    return _coupling_model(tok2vec, {"k": k, "n_buckets": n_buckets, "label_dim": label_dim, "label_init_std": 0.1}, PAIRINGS["drawn"], "emission")


@util.registry.architectures("spacy_mtlave.CouplingModel.v2")
def build_coupling_model_v2(
    tok2vec: Model[List[Doc], List[Floats2d]], k: int = 3, n_buckets: int = 4096, label_dim: int = 32, label_init_std: float = 1.0
) -> Model:
    """As v1, with the label k-gram table's init scale configurable (default 1.0): a tag's label vector is a mean of
    its k-gram rows, so with std 1.0 the label attention starts out preferring partners whose tag names share
    k-grams (identical names: dot product ~ label_dim / n_kgrams) instead of being uniform."""
    return _coupling_model(tok2vec, {"k": k, "n_buckets": n_buckets, "label_dim": label_dim, "label_init_std": label_init_std}, PAIRINGS["drawn"], "emission")


@util.registry.architectures("spacy_mtlave.CouplingModel.v3")
def build_coupling_model_v3(
    tok2vec: Model[List[Doc], List[Floats2d]],
    k: int = 3,
    n_buckets: int = 4096,
    label_dim: int = 32,
    label_init_std: float = 0.1,
    score: ScoreKind = "emission",
) -> Model:
    """The paper's TCE over all of L in the batch: L is one symmetric set of pairs (the union of both directions'
    top-k lists), an update uses every pair of L whose two contexts are in the batch (at most the component's
    ``batch_size`` when set), each with all four terms (CCE, CCE', LCE, LCE'), and the loss is their mean, so
    ``weight`` means the same whatever the number of pairs. ``score``: what is compared across the two heads:
    "emission" (the paper: raw emission scores), "log_softmax" (emissions normalised over the head's tags per token)
    or "marginal" (the head's CRF marginal probability of the gold tag)."""
    _check_score(score)
    return _coupling_model(tok2vec, {"k": k, "n_buckets": n_buckets, "label_dim": label_dim, "label_init_std": label_init_std}, PAIRINGS["all"], score)


@util.registry.architectures("spacy_mtlave.GroupCouplingModel.v1")
def build_group_coupling_model(
    tok2vec: Model[List[Doc], List[Floats2d]], k: int = 3, n_buckets: int = 4096, label_dim: int = 32, label_init_std: float = 0.1
) -> Model:
    """The coupling of any number of verticals: a tok2vec listener and a wrapped :class:`PairwiseCouplingLoss`
    (attention vectors per coupled pair, one shared label k-gram table), sized at initialize. Pairs drawn as in
    CouplingModel.v1."""
    return _coupling_model(tok2vec, {"k": k, "n_buckets": n_buckets, "label_dim": label_dim, "label_init_std": label_init_std}, PAIRINGS["drawn"], "emission", grouped=True)


@util.registry.architectures("spacy_mtlave.GroupCouplingModel.v2")
def build_group_coupling_model_v2(
    tok2vec: Model[List[Doc], List[Floats2d]],
    k: int = 3,
    n_buckets: int = 4096,
    label_dim: int = 32,
    label_init_std: float = 0.1,
    score: ScoreKind = "emission",
) -> Model:
    """GroupCouplingModel.v1 with the pairing, normalisation and ``score`` of CouplingModel.v3."""
    _check_score(score)
    return _coupling_model(tok2vec, {"k": k, "n_buckets": n_buckets, "label_dim": label_dim, "label_init_std": label_init_std}, PAIRINGS["all"], score, grouped=True)


def _check_score(score: str) -> None:
    if score not in SCORES:
        raise ValueError(f"coupling model: score must be one of {', '.join(SCORES)}, got {score!r}")


def _coupling_model(tok2vec: Model, hyperparams: Dict, pairing: Dict[str, str], score: str, grouped: bool = False) -> Model:
    module = PairwiseCouplingLoss(1, [["O"], ["O"]], [(0, 1)], **hyperparams) if grouped else CouplingLoss(1, ["O"], ["O"], **hyperparams)
    loss = PyTorchWrapper(module, convert_inputs=_coupling_inputs)
    attrs = {"hyperparams": hyperparams, "grouped": grouped, "score": score, **pairing}
    return Model("ave_coupling", _no_forward, layers=[tok2vec, loss], refs={"tok2vec": tok2vec, "loss": loss}, attrs=attrs)


def _no_forward(model: Model, docs: List[Doc], is_train: bool):
    raise NotImplementedError("ave_coupling only adds a training loss; it has no forward pass")


def _coupling_inputs(model: Model, X: Tuple, is_train: bool):
    """Two numpy PairBatches (after the pair's key for a PairwiseCouplingLoss) -> torch; the gradient flows back to
    the gold-tag scores s_anchor and s_partner."""
    grad_fields = ("s_anchor", "s_partner")
    key, X = (X[:1], X[1:]) if isinstance(X[0], str) else ((), X)
    device = module_device(model)

    def to_torch(field: str, x: Optional[numpy.ndarray]):
        if x is None:
            return None
        return xp2torch(x, requires_grad=is_train and field in grad_fields, device=device)

    batches = tuple(PairBatch(*(to_torch(f, getattr(b, f)) for f in PairBatch._fields)) for b in X)

    def reverse(d: ArgsKwargs) -> List[Tuple[numpy.ndarray, numpy.ndarray]]:
        out = []
        for b, torch_batch in zip(X, d.args[len(key):]):
            grads = []
            for f in grad_fields:
                g = torch_batch[PairBatch._fields.index(f)]
                grads.append(g.detach().cpu().numpy() if isinstance(g, torch.Tensor) and g.shape == getattr(b, f).shape and g.dtype.is_floating_point else numpy.zeros_like(getattr(b, f)))
            out.append(tuple(grads))
        return out

    return ArgsKwargs(args=key + batches, kwargs={}), reverse

