"""``spacy_mtlave.BiLSTMCRFTagger.v1``: tok2vec -> linear emission layer (one score per BIO tag) -> linear-chain CRF.

The model returns per-doc emission scores [n_tokens, n_tags]; its ``crf`` layer (a wrapped
:class:`spacy_mtlave.ml.crf.CRF`) holds the transition scores and is used for the loss and for decoding."""
from typing import List, Optional, Sequence, Tuple

import numpy
from spacy import util
from spacy.tokens import Doc
from thinc.api import (
    ArgsKwargs,
    Linear,
    Model,
    PyTorchWrapper,
    torch2xp,
    with_array,
    xp2torch,
)
from thinc.types import Floats2d, Floats3d

from .crf import CRF
from .device import module_device, replace_module, torch_module


@util.registry.architectures("spacy_mtlave.BiLSTMCRFTagger.v1")
def build_bilstm_crf_tagger(tok2vec: Model[List[Doc], List[Floats2d]], nO: Optional[int] = None) -> Model[List[Doc], List[Floats2d]]:
    """docs -> emission scores [n_tokens, nO] per doc, with a ``crf`` reference holding the transitions.

    nO (the number of BIO tags) is set by the component at initialize from the labels it sees.
    """
    emitter = with_array(Linear(nO=nO))
    crf = PyTorchWrapper(CRF(nO or 1), convert_inputs=_crf_inputs)
    return Model(
        "bilstm_crf_tagger",
        _tagger_forward,
        init=_tagger_init,
        layers=[tok2vec, emitter, crf],
        refs={"tok2vec": tok2vec, "emitter": emitter, "crf": crf},
        dims={"nO": nO},
        attrs={"resize_output": set_n_tags},
    )


def set_n_tags(model: Model, n_tags: int) -> None:
    """Size the emission layer and the CRF for ``n_tags`` tags (before initialize or deserialization)."""
    model.set_dim("nO", n_tags, force=True)
    linear = model.get_ref("emitter").layers[0]
    if linear.has_dim("nO") is not True or linear.get_dim("nO") != n_tags:
        linear.set_dim("nO", n_tags, force=True)
    if model.has_ref("value_emitter"):  # spacy_mtlave.BiLSTMCRFTagger.v2: known-value features, one per tag
        values = model.get_ref("value_emitter").layers[0]
        for dim in ("nI", "nO"):
            if values.has_dim(dim) is not True or values.get_dim(dim) != n_tags:
                values.set_dim(dim, n_tags, force=True)
    if crf_module(model).n_tags != n_tags:
        replace_module(model.get_ref("crf"), CRF(n_tags))


def crf_module(model: Model) -> CRF:
    return torch_module(model.get_ref("crf"))


def _tagger_init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    tok2vec, emitter = model.get_ref("tok2vec"), model.get_ref("emitter")
    tok2vec.initialize(X=X)
    emitter.initialize(X=tok2vec.predict(X) if X is not None else None)


def _tagger_forward(model: Model, docs: List[Doc], is_train: bool):
    tokvecs, backprop_tok2vec = model.get_ref("tok2vec")(docs, is_train)
    if not is_train and len(tokvecs) == 1 and isinstance(tokvecs[0], numpy.ndarray):
        # one doc at prediction: the emission layer's own arithmetic (``Linear``: X @ W.T + b) without with_array's
        # flatten/unflatten copies
        return [emission_scores(model.get_ref("emitter").layers[0], tokvecs[0])], lambda d_scores: []
    scores, backprop_emitter = model.get_ref("emitter")(tokvecs, is_train)

    def backprop(d_scores: List[Floats2d]) -> List[Doc]:
        return backprop_tok2vec(backprop_emitter(d_scores))

    return scores, backprop


def emission_scores(linear: Model, X: Floats2d) -> Floats2d:
    """thinc ``Linear``'s forward (X @ W.T + b) on one array, outside thinc's layer call."""
    Y = linear.ops.gemm(X, linear.get_param("W"), trans2=True)
    Y += linear.get_param("b")
    return Y


def _crf_inputs(model: Model, X: Tuple, is_train: bool):
    """(emissions [B, L, T], tags [B, L], mask [B, L]) -> the CRF's forward arguments; gradient flows to emissions.
    Partial labels: (emissions, tags, mask, allowed [B, L, T] bool, constrained) -> the partial-label loss."""
    emissions, tags, mask, *partial = X
    device = module_device(model)
    args = (xp2torch(emissions, requires_grad=is_train, device=device), xp2torch(tags, device=device), xp2torch(mask, device=device))
    kwargs = {}
    if partial:
        allowed, constrained = partial
        kwargs = {"allowed": xp2torch(allowed, device=device), "constrained": bool(constrained)}
    return ArgsKwargs(args=args, kwargs=kwargs), lambda d: torch2xp(d.args[0])


def pad_scores(scores: Sequence[Floats2d], n_tags: int) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """List of [n_i, T] -> (emissions [B, max n, T] float32, mask [B, max n] bool)."""
    width = max((len(s) for s in scores), default=0)
    emissions = numpy.zeros((len(scores), width, n_tags), dtype="float32")
    mask = numpy.zeros((len(scores), width), dtype=bool)
    for i, s in enumerate(scores):
        emissions[i, : len(s)] = s
        mask[i, : len(s)] = True
    return emissions, mask


def length_buckets(lengths: Sequence[int]) -> List[List[int]]:
    """Indices of the non-empty docs grouped so that, within a group, the longest is at most twice the shortest."""
    order = sorted((i for i, n in enumerate(lengths) if n), key=lambda i: -lengths[i])
    buckets: List[List[int]] = []
    for i in order:
        if buckets and lengths[buckets[-1][0]] <= 2 * lengths[i]:
            buckets[-1].append(i)
        else:
            buckets.append([i])
    return buckets

