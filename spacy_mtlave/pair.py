"""Multi-task training pieces for ``spacy train``: the ``ave_coupling`` component, a corpus reader that keeps each
doc's vertical, a batcher that draws every update from each of two verticals, and one that pairs up N verticals.

One joint pipeline ``tok2vec -> tagger_v1 -> tagger_v2 -> coupling`` is trained by spaCy's own loop: each
``ave_tagger`` (bound to its vertical) adds its CRF loss on its own vertical's examples, and ``ave_coupling.update``
adds weight * TCE on a minibatch of pairs of the shortlist L drawn among the update's docs. The coupling listens to
the shared tok2vec like the taggers do, so it reuses the batch's encoder pass and sends its gradient back through the
same listener into both taggers' emission layers and the shared tok2vec. With N verticals (``train-group``) there is
one tagger per vertical, and the coupling acts on the pair of verticals present in each batch.
"""
import itertools
import random
import warnings
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Literal, Optional, Sequence, Tuple, Union

import numpy
import srsly
import torch
from spacy import util
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Corpus, Example
from spacy.vocab import Vocab
from thinc.api import ArgsKwargs, Model, Optimizer, PyTorchWrapper, xp2torch
from thinc.types import Floats2d
from wasabi import msg

from .coupling import CouplingLoss, PairBatch, PairwiseCouplingLoss, label_label_attention, pair_key, transform_scores
from .device import module_device, replace_module
from .serialize import SizedFromCfg
from .tagger import crf_module
from .shortlist import Shortlist, build_shortlist, context_embeddings
from .vertical import get_vertical, set_vertical, slugify

MODES = ("none", "cce", "lce", "full")


@util.registry.readers("spacy_mtlave.VerticalCorpus.v1")
def create_vertical_corpus(paths: Dict[str, str], limit: int = 0) -> Callable[[Language], Iterator[Example]]:
    """Examples of several ``.spacy`` files (``paths``: a name for each, e.g. ``v1``, ``v2``), with ``doc._.vertical``
    copied onto the predicted docs so that each vertical-bound tagger annotates only its own docs during evaluation."""
    corpora = [Corpus(paths[key], limit=limit) for key in sorted(paths)]

    def read(nlp: Language) -> Iterator[Example]:
        for corpus in corpora:
            for eg in corpus(nlp):
                set_vertical(eg.predicted, get_vertical(eg.reference))
                yield eg

    return read


@util.registry.batchers("spacy_mtlave.vertical_batcher.v1")
def create_vertical_batcher(size: int) -> Callable[[Iterable[Example]], Iterator[List[Example]]]:
    """Batches holding up to ``size`` examples of every vertical (the paper's 30 from D1 and 30 from D2)."""

    def batch(examples: Iterable[Example]) -> Iterator[List[Example]]:
        queues: Dict[Optional[str], List[Example]] = {}
        for eg in examples:
            queues.setdefault(get_vertical(eg.reference), []).append(eg)
        start = 0
        while any(start < len(q) for q in queues.values()):
            yield [eg for q in queues.values() for eg in q[start : start + size]]
            start += size

    return batch


@util.registry.batchers("spacy_mtlave.group_batcher.v1")
def create_group_batcher(size: int, pairs: Optional[List[List[str]]] = None) -> Callable[[Iterable[Example]], Iterator[List[Example]]]:
    """Batches of ``size`` examples of each of two verticals, whatever the number of verticals: every round pairs
    up the verticals that still have examples at random (only pairs listed in ``pairs``, a list of
    [vertical, vertical]; all pairs when null) and yields one batch per pair, a vertical left without a partner
    alone. Each example is used once per epoch and a step's cost does not grow with the number of verticals."""
    allowed = None if pairs is None else {frozenset(p) for p in pairs}

    def batch(examples: Iterable[Example]) -> Iterator[List[Example]]:
        queues: Dict[Optional[str], List[Example]] = {}
        for eg in examples:
            queues.setdefault(get_vertical(eg.reference), []).append(eg)
        starts = dict.fromkeys(queues, 0)
        while True:
            active = [v for v in queues if starts[v] < len(queues[v])]
            if not active:
                return
            random.shuffle(active)
            while active:
                first = active.pop()
                partners = [v for v in active if allowed is None or frozenset((first, v)) in allowed]
                group = [first] + ([active.pop(active.index(random.choice(partners)))] if partners else [])
                yield [eg for v in group for eg in queues[v][starts[v] : starts[v] + size]]
                for v in group:
                    starts[v] += size

    return batch


PAIRINGS = {
    # v1/v2 architectures: ``batch_size`` pairs drawn per direction among the batch's contexts, TCE summed
    "drawn": {"pairing": "drawn", "reduction": "sum"},
    # v3 (and GroupCouplingModel.v2): every pair of L (one symmetric set) with both contexts in the batch, all four
    # terms of TCE on each pair, the loss averaged over the pairs used
    "all": {"pairing": "all", "reduction": "mean"},
}
SCORES = ("emission", "log_softmax", "marginal")
ScoreKind = Literal["emission", "log_softmax", "marginal"]


class _Cycle:
    """One vertical's examples, handed out ``size`` at a time in a fresh random order each time they run out."""

    def __init__(self, examples: List[Example]):
        self.examples, self.order, self.used = examples, list(examples), 0

    def take(self, size: int) -> List[Example]:
        """The next ``size`` examples (all of them if there are fewer), never one twice in the same batch."""
        out: List[Example] = []
        while len(out) < min(size, len(self.examples)):
            if not self.order:
                fresh = random.sample(self.examples, len(self.examples))
                taken = {id(eg) for eg in out}
                self.order = [eg for eg in fresh if id(eg) not in taken] + [eg for eg in fresh if id(eg) in taken]
            out.append(self.order.pop(0))
        self.used += len(out)
        return out

    @property
    def exhausted(self) -> bool:
        """Whether every example has been handed out at least once."""
        return self.used >= len(self.examples)


def _queues(examples: Iterable[Example]) -> Dict[Optional[str], List[Example]]:
    queues: Dict[Optional[str], List[Example]] = {}
    for eg in examples:
        queues.setdefault(get_vertical(eg.reference), []).append(eg)
    return queues


@util.registry.batchers("spacy_mtlave.vertical_batcher.v2")
def create_vertical_batcher_v2(size: int) -> Callable[[Iterable[Example]], Iterator[List[Example]]]:
    """Balanced batches: every batch holds ``size`` examples of every vertical, until the largest vertical has been
    used once (one epoch); a smaller vertical starts over in a new random order when it runs out. Each vertical gets
    the same number of updates whatever its size (with v1 a vertical half the size of its partner is absent from
    half of the batches)."""

    def batch(examples: Iterable[Example]) -> Iterator[List[Example]]:
        cycles = [_Cycle(q) for q in _queues(examples).values()]
        while cycles and not all(c.exhausted for c in cycles):
            yield [eg for c in cycles for eg in c.take(size)]

    return batch


@util.registry.batchers("spacy_mtlave.group_batcher.v2")
def create_group_batcher_v2(size: int, pairs: Optional[List[List[str]]] = None) -> Callable[[Iterable[Example]], Iterator[List[Example]]]:
    """Balanced group batches: every round pairs up all verticals at random (only pairs listed in ``pairs``; all
    pairs when null) and yields ``size`` examples of each of the two per batch, a vertical left without a partner
    alone; rounds go on until every vertical has been used once (one epoch), smaller verticals starting over in a new
    random order. Every vertical gets one batch per round whatever its size."""
    allowed = None if pairs is None else {frozenset(p) for p in pairs}

    def batch(examples: Iterable[Example]) -> Iterator[List[Example]]:
        cycles = {v: _Cycle(q) for v, q in _queues(examples).items()}
        while cycles and not all(c.exhausted for c in cycles.values()):
            active = list(cycles)
            random.shuffle(active)
            while active:
                first = active.pop()
                partners = [v for v in active if allowed is None or frozenset((first, v)) in allowed]
                group = [first] + ([active.pop(active.index(random.choice(partners)))] if partners else [])
                yield [eg for v in group for eg in cycles[v].take(size)]

    return batch


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


@Language.factory(
    "ave_coupling",
    default_config={
        "model": {"@architectures": "spacy_mtlave.CouplingModel.v3", "tok2vec": {"@architectures": "spacy.Tok2VecListener.v1", "width": 256, "upstream": "*"}},
        "taggers": ["tagger_v1", "tagger_v2"],
        "pairs": None,
        "mode": "full",
        "weight": 1.0,
        "thresh": 0.8,
        "window": 1,
        "top_k": 10,
        "batch_size": None,
        "skip_outside": False,
    },
)
def make_ave_coupling(
    nlp: Language,
    name: str,
    model: Model,
    taggers: List[str],
    pairs: Optional[List[List[str]]],
    mode: str,
    weight: float,
    thresh: float,
    window: int,
    top_k: Optional[int],
    batch_size: Optional[int],
    skip_outside: bool,
) -> "CouplingComponent":
    """The paper's coupling loss between vertical-bound ``ave_tagger`` components sharing one tok2vec.

    taggers: two components with ``CouplingModel`` (the paper's pair), or any number with ``GroupCouplingModel``.
    pairs: the pairs of taggers to couple (default: every pair); each has its own shortlist and attention vectors.
    mode: "none" (hard sharing only), "cce" (context attention), "lce" (label attention) or "full" (TCE).
    batch_size: with CouplingModel.v3 / GroupCouplingModel.v2, the most pairs of L an update uses (null: every pair
    of L whose two contexts are in the update's docs); with the v1/v2 architectures, the pairs drawn per direction
    (null: 30).
    skip_outside: leave contexts whose gold tag is ``O`` out of L, so that only attribute tokens are coupled.
    Place the component before the taggers it couples (``tok2vec -> coupling -> taggers``): its gradient to their
    emission layers is then applied by their own optimizer step in the same update as their CRF losses.
    """
    if mode not in MODES:
        raise ValueError(f"{name}: mode must be one of {MODES}, got {mode!r}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"{name}: batch_size must be null or >= 1, got {batch_size}")
    grouped = bool(model.attrs.get("grouped"))
    if len(taggers) < 2 or len(set(taggers)) < len(taggers) or (len(taggers) != 2 and not grouped):
        need = "at least two different" if grouped else "exactly two (more need spacy_mtlave.GroupCouplingModel.v2)"
        raise ValueError(f"{name}: 'taggers' must name {need} ave_tagger components, got {taggers}")
    pair_ids = list(itertools.combinations(range(len(taggers)), 2))
    if pairs is not None:
        position = {tagger: i for i, tagger in enumerate(taggers)}
        unknown = [p for p in pairs if len(p) != 2 or p[0] == p[1] or not set(p) <= set(position)]
        if unknown or not pairs:
            raise ValueError(f"{name}: 'pairs' must list pairs of two different components of 'taggers', got {unknown or pairs}")
        pair_ids = sorted({tuple(sorted(position[t] for t in p)) for p in pairs})
    cfg = {"taggers": taggers, "pairs": pairs, "mode": mode, "weight": weight, "thresh": thresh, "window": window, "top_k": top_k, "batch_size": batch_size, "skip_outside": skip_outside}
    return CouplingComponent(nlp.vocab, model, name, cfg, pair_ids)


class CouplingComponent(SizedFromCfg, TrainablePipe):
    """Adds weight * TCE to training; does nothing to docs at inference."""

    def __init__(self, vocab: Vocab, model: Model, name: str, cfg: Dict, pair_ids: Sequence[Tuple[int, int]] = ((0, 1),)) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        sizes = {"tags": [], "pair_ids": [list(p) for p in pair_ids]} if self.grouped else {"tags1": [], "tags2": []}
        self.cfg = dict(cfg, dim=0, **sizes)
        self.scorer = None
        self._states: Dict[str, _TrainingState] = {}
        self._pending: Optional[Tuple[List, List[Example]]] = None

    @property
    def grouped(self) -> bool:
        return bool(self.model.attrs.get("grouped"))

    @property
    def settings(self) -> Dict:
        """The architecture's pairing ("drawn" or "all"), reduction ("sum" or "mean") and score, and the
        component's sampling settings: what :class:`_TrainingState` is given."""
        attrs = self.model.attrs
        keys = ("weight", "batch_size")
        return {"pairing": attrs.get("pairing", "drawn"), "reduction": attrs.get("reduction", "sum"), "score": attrs.get("score", "emission"), **{k: self.cfg[k] for k in keys}}

    def tag_lists(self) -> List[List[str]]:
        """Each coupled tagger's tags (in the order of ``taggers``), as sized at initialize."""
        return self.cfg["tags"] if self.grouped else [self.cfg["tags1"], self.cfg["tags2"]]

    def _rebuild(self) -> None:
        mode = self.cfg["mode"]
        options = dict(self.model.attrs["hyperparams"], use_context=mode in ("cce", "full"), use_label=mode in ("lce", "full"))
        dim = max(self.cfg["dim"], 1)
        if self.grouped:
            tags = [t or ["O"] for t in self.cfg["tags"]] or [["O"]] * len(self.cfg["taggers"])
            module = PairwiseCouplingLoss(dim, tags, [tuple(p) for p in self.cfg["pair_ids"]], **options)
        else:
            module = CouplingLoss(dim, self.cfg["tags1"] or ["O"], self.cfg["tags2"] or ["O"], **options)
        replace_module(self.model.get_ref("loss"), module)

    @property
    def module(self) -> Union[CouplingLoss, PairwiseCouplingLoss]:
        return self.model.get_ref("loss").shims[0]._model

    @property
    def states(self) -> Dict[str, "_TrainingState"]:
        """The training state of each coupled pair of verticals, keyed ``"i-j"`` (empty before :meth:`prepare`)."""
        self._prepare_pending()
        return dict(self._states)

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None) -> None:
        """Sizes the loss and builds the shortlists from the training examples. The taggers it couples usually come
        after it in the pipeline and are initialized after it: the sizing then waits for the first update."""
        if nlp is None:
            raise ValueError(f"{self.name}: initialize needs the pipeline (nlp)")
        taggers = [nlp.get_pipe(name) for name in self.cfg["taggers"]]
        verticals = [t.vertical for t in taggers]
        if None in verticals or len(set(verticals)) < len(verticals):
            raise ValueError(f"{self.name}: the taggers must be bound to different verticals, got {verticals}")
        self.cfg["dim"] = nlp.vocab.vectors.shape[1]
        examples = list(get_examples())
        self.model.get_ref("tok2vec").initialize(X=[eg.predicted for eg in examples[:10]])
        self._states = {}
        self._pending = (taggers, examples)
        if all(t.labels for t in taggers):
            self._prepare_pending()

    def prepare(self, taggers: Sequence, examples: List[Example]) -> None:
        """Size the loss for the taggers' tag sets (if not sized yet) and build each coupled pair's shortlist and
        contexts from ``examples`` (the training docs)."""
        tags = [list(t.tags) for t in taggers]
        if tags != self.tag_lists():
            if self.grouped:
                self.cfg["tags"] = tags
            else:
                self.cfg["tags1"], self.cfg["tags2"] = tags
            self._rebuild()
        self._states = _TrainingState.build_all(self, taggers, examples)

    def _prepare_pending(self) -> None:
        if self._pending is not None:
            taggers, examples = self._pending
            self._pending = None
            self.prepare(taggers, examples)

    def predict(self, docs: Iterable[Doc]) -> None:
        return None

    def set_annotations(self, docs: Iterable[Doc], predictions: None) -> None:
        return None

    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd: Optional[Optimizer] = None, losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        """weight * TCE on pairs of L among these examples' contexts, for every coupled pair of verticals with docs
        in the update. The shared tok2vec's output for the batch comes through the listener; its gradient goes back
        the same way (zeros when there is nothing to couple)."""
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        self._prepare_pending()
        examples = list(examples)
        docs = [eg.predicted for eg in examples]
        tokvecs, backprop_tok2vec = self.model.get_ref("tok2vec").begin_update(docs)
        d_tokvecs = [self.model.ops.alloc2f(*t.shape) for t in tokvecs]
        if self.cfg["mode"] != "none":
            present = {get_vertical(eg.reference) for eg in examples}
            settings = self.settings
            for state in self._states.values():
                if state.has_pairs and state.verticals <= present:
                    loss, d_pair = state.step(self.model, settings, examples, tokvecs)
                    losses[self.name] += loss
                    d_tokvecs = [a + b for a, b in zip(d_tokvecs, d_pair)]
        backprop_tok2vec(d_tokvecs)
        if sgd is not None:
            self.finish_update(sgd)
        return losses

    def usage(self) -> Dict[str, Dict]:
        """Per coupled pair of verticals: updates coupled, pairs used per update, and how often each pair of L was used
        (see :meth:`_TrainingState.usage`)."""
        return {" + ".join(sorted(state.verticals)): state.usage() for state in self._states.values()}

    def label_attention(self) -> List[Dict]:
        """Per coupled pair of verticals: mean attention per (tag of v1, tag of v2) over all of L, both directions,
        context and label terms."""
        self._prepare_pending()
        if not self._states:
            raise ValueError(f"{self.name}: label attention needs the training state (initialize or prepare first)")
        return [state.label_attention(self) for state in self._states.values()]


class _VerticalContexts:
    """The training docs of one vertical and its contexts: window embeddings U [n, d], (doc, token) index [n, 2],
    gold tag id per context [n], first context of each doc ``offsets`` [n_docs + 1], and doc text -> doc index."""

    def __init__(self, vertical: str, docs: List[Doc], gold: List[List[int]], window: int):
        self.vertical = vertical
        self.U, self.index = context_embeddings(docs, window)
        self.tags = numpy.concatenate([numpy.asarray(g, dtype="int64") for g in gold])
        self.offsets = numpy.concatenate([[0], numpy.cumsum([len(d) for d in docs])]).astype("int64")
        self.doc_ids = {doc.text: i for i, doc in enumerate(docs)}

    @classmethod
    def build(cls, component: "CouplingComponent", tagger, examples: List[Example]) -> "_VerticalContexts":
        own = [eg for eg in examples if get_vertical(eg.reference) == tagger.vertical]
        gold = tagger.gold_tag_ids(own)
        kept = [(eg.predicted, g) for eg, g in zip(own, gold) if g is not None and len(g)]
        if not kept:
            raise ValueError(f"{component.name}: vertical {tagger.vertical!r} has no usable training docs")
        return cls(tagger.vertical, [d for d, _ in kept], [g for _, g in kept], component.cfg["window"])

    def shortlist_vectors(self, skip_outside: bool) -> numpy.ndarray:
        """U, with the rows of ``O`` contexts zeroed when skip_outside (a zero window embedding never matches)."""
        return self.U * (self.tags != 0)[:, None] if skip_outside else self.U

    def in_batch(self, doc_ids: numpy.ndarray) -> numpy.ndarray:
        """bool [n_docs]: which of this vertical's docs are among ``doc_ids``."""
        out = numpy.zeros(len(self.offsets) - 1, dtype=bool)
        out[doc_ids] = True
        return out


class _TrainingState:
    """What the coupling of one pair of verticals needs during training (not serialized): both verticals' contexts,
    their heads (emission layer and CRF) and the shortlist L, with a count of how often each pair of L is used."""

    def __init__(self, key: str, positions: Tuple[int, int], heads: List[Model], sides: List[_VerticalContexts], shortlist: Shortlist, grouped: bool):
        self.key, self.positions, self.grouped = key, positions, grouped
        self.heads, self.sides, self.shortlist = heads, sides, shortlist
        self.verticals = {side.vertical for side in sides}
        self.partners = [shortlist.partners_12, shortlist.partners_21]
        # doc (of the partner's vertical) of every partner entry, per direction
        self.partner_docs = [sides[1].index[shortlist.partners_12.indices, 0], sides[0].index[shortlist.partners_21.indices, 0]]
        self.has_pairs = shortlist.n_pairs() > 0
        # every pair of L as entries of both directions' partner lists (used when L is symmetric, pairing "all")
        c1 = numpy.repeat(numpy.arange(shortlist.n1), shortlist.partners_12.counts())
        c2 = shortlist.partners_12.indices.astype("int64")
        self.pair_contexts = (c1, c2)
        self.pair_columns = (numpy.arange(len(c2)) - shortlist.partners_12.indptr[c1], _column_in(shortlist.partners_21, c2, c1))
        self.pair_docs = (sides[0].index[c1, 0], sides[1].index[c2, 0])
        self.uses = numpy.zeros(len(c2), dtype="int64")  # per entry of partners_12 (pairing "all") or of both directions ("drawn")
        self.uses_21 = numpy.zeros(len(shortlist.partners_21.indices), dtype="int64")
        self.pairs_per_update: List[int] = []

    @classmethod
    def build_all(cls, component: CouplingComponent, taggers: List, examples: List[Example]) -> Dict[str, "_TrainingState"]:
        """One state per coupled pair of taggers, keyed like the PairwiseCouplingLoss (``"i-j"``)."""
        cfg = component.cfg
        symmetric = component.settings["pairing"] == "all"
        sides = [_VerticalContexts.build(component, tagger, examples) for tagger in taggers]
        states = {}
        for i, j in component.cfg.get("pair_ids", [(0, 1)]):
            shortlist = build_shortlist(sides[i].shortlist_vectors(cfg["skip_outside"]), sides[j].shortlist_vectors(cfg["skip_outside"]), cfg["thresh"], top_k=cfg["top_k"])
            if symmetric:
                shortlist = shortlist.symmetric()
            label = f"{sides[i].vertical} + {sides[j].vertical}"
            msg.info(f"{component.name}: shortlist L of {label} {srsly.json_dumps(shortlist.summary())}")
            if shortlist.n_pairs() == 0:
                warnings.warn(
                    f"{component.name}: thresh={cfg['thresh']} leaves the shortlist L empty for {label} (best cosine similarity "
                    f"{shortlist.best_similarity:.3f}); these two verticals are trained with hard parameter sharing only"
                )
            heads = [taggers[i].model, taggers[j].model]
            states[pair_key(i, j)] = cls(pair_key(i, j), (i, j), heads, [sides[i], sides[j]], shortlist, component.grouped)
        return states

    def _padded(self, direction: int, anchors: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """anchors [n] -> their whole partner lists padded [n, K] and the mask [n, K]."""
        partners = self.partners[direction]
        counts = partners.counts()[anchors]
        width = max(int(counts.max(initial=0)), 1)
        mask = numpy.arange(width)[None, :] < counts[:, None]
        padded = numpy.zeros((len(anchors), width), dtype="int64")
        padded[mask] = numpy.concatenate([partners[int(a)][0] for a in anchors] or [numpy.zeros(0, dtype="int64")])
        return padded, mask

    def _draw(self, direction: int, batch_docs: List[numpy.ndarray], n_pairs: int) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """Pairing "drawn": up to n_pairs pairs of L (this direction) whose two contexts lie in the batch's docs.
        Returns (anchor contexts [m], column of the drawn partner in the anchor's partner list [m])."""
        a_side, p_side = (0, 1) if direction == 0 else (1, 0)
        offsets = self.sides[a_side].offsets
        anchors = numpy.concatenate([numpy.arange(offsets[i], offsets[i + 1]) for i in batch_docs[a_side]] or [numpy.zeros(0, dtype="int64")])
        partners = self.partners[direction]
        starts, counts = partners.indptr[anchors], partners.counts()[anchors]
        owner = numpy.repeat(anchors, counts)
        entries = numpy.repeat(starts - numpy.cumsum(counts) + counts, counts) + numpy.arange(int(counts.sum()))
        in_batch = self.sides[p_side].in_batch(batch_docs[p_side])
        eligible = numpy.flatnonzero(in_batch[self.partner_docs[direction][entries]])
        if len(eligible) > n_pairs:
            eligible = numpy.sort(numpy.random.choice(eligible, n_pairs, replace=False))
        chosen = entries[eligible]
        numpy.add.at(self.uses if direction == 0 else self.uses_21, chosen, 1)
        anchors = owner[eligible]
        return anchors, chosen - partners.indptr[anchors]

    def _all_pairs(self, batch_docs: List[numpy.ndarray], cap: Optional[int]) -> List[Tuple[numpy.ndarray, numpy.ndarray]]:
        """Pairing "all": every pair of (symmetric) L whose two contexts lie in the batch's docs (at most ``cap``,
        drawn uniformly), as (anchor contexts, partner columns) in each direction: the same pairs both ways."""
        in_1, in_2 = (side.in_batch(docs) for side, docs in zip(self.sides, batch_docs))
        eligible = numpy.flatnonzero(in_1[self.pair_docs[0]] & in_2[self.pair_docs[1]])
        if cap is not None and len(eligible) > cap:
            eligible = numpy.sort(numpy.random.choice(eligible, cap, replace=False))
        self.uses[eligible] += 1
        return [(self.pair_contexts[d][eligible], self.pair_columns[d][eligible]) for d in (0, 1)]

    def step(self, model: Model, settings: Dict, examples: List[Example], tokvecs: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        """weight * TCE on this pair's pairs of L among the examples' contexts; returns (loss, d_tokvecs).

        model: the coupling component's model (its ``loss`` layer); settings: :attr:`CouplingComponent.settings`.
        """
        positions: List[List[int]] = [[], []]  # batch positions of each side's docs
        batch_docs: List[List[int]] = [[], []]  # their doc ids in the side's tables
        for pos, eg in enumerate(examples):
            for s, side in enumerate(self.sides):
                doc_id = side.doc_ids.get(eg.reference.text) if get_vertical(eg.reference) == side.vertical else None
                if doc_id is not None:
                    positions[s].append(pos)
                    batch_docs[s].append(doc_id)
        ops = model.ops
        d_tokvecs = [ops.alloc2f(*t.shape) for t in tokvecs]
        if not all(batch_docs):
            return 0.0, d_tokvecs
        doc_arrays = [numpy.asarray(b, dtype="int64") for b in batch_docs]
        if settings["pairing"] == "all":
            directions = self._all_pairs(doc_arrays, settings["batch_size"])
        else:
            n_drawn = settings["batch_size"] or 30
            directions = [self._draw(d, doc_arrays, n_drawn) for d in (0, 1)]
        n_pairs = len(directions[0][0])
        self.pairs_per_update.append(n_pairs if settings["pairing"] == "all" else n_pairs + len(directions[1][0]))
        if n_pairs == 0 and not len(directions[1][0]):
            return 0.0, d_tokvecs
        flats, backprops, rows = [], [], []
        for s in (0, 1):
            emitter = self.heads[s].get_ref("emitter")
            scores, backprop = emitter.begin_update([tokvecs[p] for p in positions[s]])
            lengths = [len(x) for x in scores]
            raw = numpy.concatenate([ops.to_numpy(x) for x in scores])
            compared, backprop_score = transform_scores(settings["score"], raw, lengths, crf_module(self.heads[s]))
            flats.append(compared)
            backprops.append((backprop, backprop_score, lengths))
            start_of = numpy.zeros(len(self.sides[s].offsets) - 1, dtype="int64")
            start_of[doc_arrays[s]] = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]])
            rows.append(start_of)
        batches, gathers = [], []
        for d, (anchor_ctx, column) in enumerate(directions):
            a_side, p_side = (0, 1) if d == 0 else (1, 0)
            A, P = self.sides[a_side], self.sides[p_side]
            anchors, row_of = numpy.unique(anchor_ctx, return_inverse=True)  # one row per anchor, its used pairs marked
            partners, mask = self._padded(d, anchors)
            sampled = numpy.zeros_like(mask)
            sampled[row_of, column] = True
            drawn = partners[sampled]
            row_a = rows[a_side][A.index[anchors, 0]] + A.index[anchors, 1]
            row_p = rows[p_side][P.index[drawn, 0]] + P.index[drawn, 1]
            ya, yp = A.tags[anchors], P.tags[partners]
            s_partner = numpy.zeros(mask.shape, dtype="float32")
            s_partner[sampled] = flats[p_side][row_p, P.tags[drawn]]
            batches.append(PairBatch(
                u_anchor=A.U[anchors], u_partner=P.U[partners], mask=mask,
                s_anchor=flats[a_side][row_a, ya].astype("float32"), s_partner=s_partner,
                y_anchor=ya, y_partner=yp, sampled=sampled,
            ))
            gathers.append((a_side, row_a, ya, p_side, row_p, P.tags[drawn], sampled))
        scale = settings["weight"] / max(n_pairs, 1) if settings["reduction"] == "mean" else settings["weight"]
        loss, backprop_loss = model.get_ref("loss").begin_update((self.key, *batches) if self.grouped else tuple(batches))
        grads = backprop_loss(model.ops.xp.full(loss.shape, scale, dtype="float32"))
        d_flats = [numpy.zeros_like(f) for f in flats]
        for (a_side, row_a, ya, p_side, row_p, yp, sampled), (d_anchor, d_partner) in zip(gathers, grads):
            numpy.add.at(d_flats[a_side], (row_a, ya), d_anchor)
            numpy.add.at(d_flats[p_side], (row_p, yp), d_partner[sampled])
        for s in (0, 1):
            backprop, backprop_score, lengths = backprops[s]
            d_raw = backprop_score(d_flats[s])
            d_side = backprop([ops.asarray2f(x) for x in numpy.split(d_raw, numpy.cumsum(lengths)[:-1])])
            for p, d in zip(positions[s], d_side):
                d_tokvecs[p] = d
        return float(loss) * scale, d_tokvecs

    def usage(self) -> Dict:
        """Updates coupled, pairs of L used per update (mean, min, max) and uses per pair of L over the run (mean,
        max, share never used). Pairing "drawn" counts a pair once per direction it was drawn in."""
        per_update = numpy.asarray(self.pairs_per_update or [0])
        uses = self.uses if not self.uses_21.any() else numpy.concatenate([self.uses, self.uses_21])
        n_pairs = int(self.shortlist.n_pairs())
        return {
            "pairs_in_L": n_pairs,
            "updates": len(self.pairs_per_update),
            "pairs_per_update": {"mean": float(per_update.mean()), "min": int(per_update.min()), "max": int(per_update.max())},
            "uses_per_pair": {
                "mean": float(uses.sum() / max(n_pairs, 1)),
                "max": int(uses.max(initial=0)),
                "never_used": float(numpy.mean(uses == 0)) if len(uses) else 0.0,
            },
        }

    def module(self, component: CouplingComponent) -> CouplingLoss:
        """This pair's CouplingLoss."""
        return component.module.pairs[self.key] if self.grouped else component.module

    def label_attention(self, component: CouplingComponent) -> Dict:
        module = self.module(component)
        tags = [component.tag_lists()[p] for p in self.positions]
        out: Dict = {"verticals": [side.vertical for side in self.sides], "tags1": tags[0], "tags2": tags[1], "shortlist": self.shortlist.summary()}
        for d, key in ((0, "12"), (1, "21")):
            anchors = numpy.flatnonzero(self.partners[d].counts())
            partners, mask = self._padded(d, anchors)
            a_side, p_side = (0, 1) if d == 0 else (1, 0)
            A, P = self.sides[a_side], self.sides[p_side]
            device = module_device(component.model.get_ref("loss"))
            batch = PairBatch(*(xp2torch(x, device=device) for x in (
                A.U[anchors], P.U[partners], mask, numpy.zeros(len(anchors), "float32"), numpy.zeros(mask.shape, "float32"), A.tags[anchors], P.tags[partners],
            )))
            n_a, n_p = len(tags[a_side]), len(tags[p_side])
            with torch.no_grad():
                for kind, attention in (("context", module.context_attention(batch, key)), ("label", module.label_attention(batch, key))):
                    out[f"{kind}_{key}"] = label_label_attention(attention.cpu().numpy(), A.tags[anchors], P.tags[partners], mask, n_a, n_p).tolist()
        return out


def _column_in(partners, owners: numpy.ndarray, others: numpy.ndarray) -> numpy.ndarray:
    """For each (owner, other) pair, the position of ``other`` in ``owner``'s list of ``partners`` (-1 if absent)."""
    n_other = int(max(partners.indices.max(initial=0), others.max(initial=0))) + 1
    owner_of = numpy.repeat(numpy.arange(len(partners)), partners.counts())
    codes = owner_of * n_other + partners.indices.astype("int64")
    order = numpy.argsort(codes, kind="stable")
    wanted = owners.astype("int64") * n_other + others.astype("int64")
    found = numpy.searchsorted(codes[order], wanted)
    found = numpy.minimum(found, max(len(codes) - 1, 0))
    hit = (codes[order][found] == wanted) if len(codes) else numpy.zeros(len(wanted), dtype=bool)
    entry = order[found] if len(codes) else numpy.zeros(len(wanted), dtype="int64")
    return numpy.where(hit, entry - partners.indptr[owners], -1)


def split_vertical(joint: Path, tagger: str, output_dir: Path, checkpoint: Optional[Path] = None) -> Path:
    """Write the joint pipeline's ``tok2vec`` + ``tagger`` as a standalone vertical pipeline (component
    ``ave_tagger``, annotating every doc) to output_dir; with ``checkpoint`` (a folder of
    :mod:`spacy_mtlave.checkpoints`), the weights of that vertical's own best epoch."""
    from .checkpoints import restore_checkpoint

    nlp = util.load_model(joint)
    if checkpoint is not None:
        restore_checkpoint(nlp, checkpoint)
    vertical = nlp.get_pipe(tagger).vertical
    for name in list(nlp.pipe_names):
        if name not in ("tok2vec", tagger):
            nlp.remove_pipe(name)
    if tagger != "ave_tagger":
        nlp.rename_pipe(tagger, "ave_tagger")
    nlp.get_pipe("ave_tagger").cfg["vertical"] = None
    nlp._pipe_configs["ave_tagger"]["vertical"] = None
    if vertical is not None:
        nlp.meta["name"] = f"ave_{slugify(vertical)}"
        nlp.meta["vertical"] = vertical
    nlp.to_disk(output_dir)
    return Path(output_dir)


def label_attention(joint: Path, train_paths: Sequence[Path]) -> List[Dict]:
    """The trained coupling's mean label-label attention over the shortlists of the training corpora, one dict per
    coupled pair of verticals."""
    nlp = util.load_model(joint)
    examples = list(create_vertical_corpus({f"v{i}": str(p) for i, p in enumerate(train_paths, start=1)})(nlp))
    coupling: CouplingComponent = nlp.get_pipe("coupling")
    coupling.prepare([nlp.get_pipe(name) for name in coupling.cfg["taggers"]], examples)
    return coupling.label_attention()
