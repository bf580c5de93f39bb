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
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

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

from .coupling import CouplingLoss, PairBatch, PairwiseCouplingLoss, label_label_attention, pair_key
from .device import module_device, replace_module
from .serialize import SizedFromCfg
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


@util.registry.architectures("spacy_mtlave.CouplingModel.v1")
def build_coupling_model(tok2vec: Model[List[Doc], List[Floats2d]], k: int = 3, n_buckets: int = 4096, label_dim: int = 32) -> Model:
    """A tok2vec listener (the coupling reuses the batch's shared encoder pass) and a wrapped :class:`CouplingLoss`,
    sized for the two taggers' tag sets when the component is initialized. Label k-gram table initialised with
    std 0.1 (label attention starts nearly uniform)."""
    return _coupling_model(tok2vec, {"k": k, "n_buckets": n_buckets, "label_dim": label_dim, "label_init_std": 0.1})


@util.registry.architectures("spacy_mtlave.CouplingModel.v2")
def build_coupling_model_v2(
    tok2vec: Model[List[Doc], List[Floats2d]], k: int = 3, n_buckets: int = 4096, label_dim: int = 32, label_init_std: float = 1.0
) -> Model:
    """As v1, with the label k-gram table's init scale configurable (default 1.0): a tag's label vector is a mean of
    its k-gram rows, so with std 1.0 the label attention starts out preferring partners whose tag names share
    k-grams (identical names: dot product ~ label_dim / n_kgrams) instead of being uniform."""
    return _coupling_model(tok2vec, {"k": k, "n_buckets": n_buckets, "label_dim": label_dim, "label_init_std": label_init_std})


@util.registry.architectures("spacy_mtlave.GroupCouplingModel.v1")
def build_group_coupling_model(
    tok2vec: Model[List[Doc], List[Floats2d]], k: int = 3, n_buckets: int = 4096, label_dim: int = 32, label_init_std: float = 0.1
) -> Model:
    """The coupling of any number of verticals: a tok2vec listener and a wrapped :class:`PairwiseCouplingLoss`
    (attention vectors per coupled pair, one shared label k-gram table), sized at initialize."""
    return _coupling_model(tok2vec, {"k": k, "n_buckets": n_buckets, "label_dim": label_dim, "label_init_std": label_init_std}, grouped=True)


def _coupling_model(tok2vec: Model, hyperparams: Dict, grouped: bool = False) -> Model:
    module = PairwiseCouplingLoss(1, [["O"], ["O"]], [(0, 1)], **hyperparams) if grouped else CouplingLoss(1, ["O"], ["O"], **hyperparams)
    loss = PyTorchWrapper(module, convert_inputs=_coupling_inputs)
    attrs = {"hyperparams": hyperparams, "grouped": grouped}
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
        "model": {"@architectures": "spacy_mtlave.CouplingModel.v1", "tok2vec": {"@architectures": "spacy.Tok2VecListener.v1", "width": 256, "upstream": "*"}},
        "taggers": ["tagger_v1", "tagger_v2"],
        "pairs": None,
        "mode": "full",
        "weight": 1.0,
        "thresh": 0.8,
        "window": 1,
        "top_k": 10,
        "batch_size": 30,
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
    batch_size: int,
    skip_outside: bool,
) -> "CouplingComponent":
    """The paper's coupling loss between vertical-bound ``ave_tagger`` components sharing one tok2vec.

    taggers: two components with ``CouplingModel`` (the paper's pair), or any number with ``GroupCouplingModel``.
    pairs: the pairs of taggers to couple (default: every pair); each has its own shortlist and attention vectors.
    mode: "none" (hard sharing only), "cce" (context attention), "lce" (label attention) or "full" (TCE).
    Each update draws ``batch_size`` pairs of L in each direction (v1 -> v2 and v2 -> v1) among the contexts of
    the update's docs, for every coupled pair of verticals present in the update; attention is normalised over each
    anchor's whole partner set in L (at most top_k).
    skip_outside: leave contexts whose gold tag is ``O`` out of L, so that only attribute tokens are coupled.
    """
    if mode not in MODES:
        raise ValueError(f"{name}: mode must be one of {MODES}, got {mode!r}")
    grouped = bool(model.attrs.get("grouped"))
    if len(taggers) < 2 or len(set(taggers)) < len(taggers) or (len(taggers) != 2 and not grouped):
        need = "at least two different" if grouped else "exactly two (more need spacy_mtlave.GroupCouplingModel.v1)"
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

    @property
    def grouped(self) -> bool:
        return bool(self.model.attrs.get("grouped"))

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

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None) -> None:
        if nlp is None:
            raise ValueError(f"{self.name}: initialize needs the pipeline (nlp)")
        taggers = [nlp.get_pipe(name) for name in self.cfg["taggers"]]
        verticals = [t.vertical for t in taggers]
        if None in verticals or len(set(verticals)) < len(verticals):
            raise ValueError(f"{self.name}: the taggers must be bound to different verticals, got {verticals}")
        if self.grouped:
            self.cfg["tags"] = [t.tags for t in taggers]
        else:
            self.cfg["tags1"], self.cfg["tags2"] = taggers[0].tags, taggers[1].tags
        self.cfg["dim"] = nlp.vocab.vectors.shape[1]
        self._rebuild()
        examples = list(get_examples())
        self.model.get_ref("tok2vec").initialize(X=[eg.predicted for eg in examples[:10]])
        self._states = _TrainingState.build_all(self, taggers, examples)

    def predict(self, docs: Iterable[Doc]) -> None:
        return None

    def set_annotations(self, docs: Iterable[Doc], predictions: None) -> None:
        return None

    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd: Optional[Optimizer] = None, losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        """weight * TCE on pairs of L drawn among these examples' contexts, for every coupled pair of verticals with
        docs in the update. The shared tok2vec's output for the batch comes through the listener; its gradient goes
        back the same way (zeros when there is nothing to couple)."""
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        docs = [eg.predicted for eg in examples]
        tokvecs, backprop_tok2vec = self.model.get_ref("tok2vec").begin_update(docs)
        d_tokvecs = [self.model.ops.alloc2f(*t.shape) for t in tokvecs]
        if self.cfg["mode"] != "none":
            present = {get_vertical(eg.reference) for eg in examples}
            for state in self._states.values():
                if state.has_pairs and state.verticals <= present:
                    loss, d_pair = state.step(self, examples, tokvecs)
                    losses[self.name] += loss
                    d_tokvecs = [a + b for a, b in zip(d_tokvecs, d_pair)]
        backprop_tok2vec(d_tokvecs)
        if sgd is not None:
            self.finish_update(sgd)
        return losses

    def label_attention(self) -> List[Dict]:
        """Per coupled pair of verticals: mean attention per (tag of v1, tag of v2) over all of L, both directions,
        context and label terms."""
        if not self._states:
            raise ValueError(f"{self.name}: label attention needs the training state (initialize first)")
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


class _TrainingState:
    """What the coupling of one pair of verticals needs during training (not serialized): both verticals' contexts,
    their emission layers and the shortlist."""

    def __init__(self, key: str, positions: Tuple[int, int], emitters: List[Model], sides: List[_VerticalContexts], shortlist: Shortlist, grouped: bool):
        self.key, self.positions, self.grouped = key, positions, grouped
        self.emitters, self.sides, self.shortlist = emitters, sides, shortlist
        self.verticals = {side.vertical for side in sides}
        self.partners = [shortlist.partners_12, shortlist.partners_21]
        # doc (of the partner's vertical) of every partner entry, per direction
        self.partner_docs = [sides[1].index[shortlist.partners_12.indices, 0], sides[0].index[shortlist.partners_21.indices, 0]]
        self.has_pairs = shortlist.n_pairs() > 0

    @classmethod
    def build_all(cls, component: CouplingComponent, taggers: List, examples: List[Example]) -> Dict[str, "_TrainingState"]:
        """One state per coupled pair of taggers, keyed like the PairwiseCouplingLoss (``"i-j"``)."""
        cfg = component.cfg
        sides = [_VerticalContexts.build(component, tagger, examples) for tagger in taggers]
        states = {}
        for i, j in component.cfg.get("pair_ids", [(0, 1)]):
            shortlist = build_shortlist(sides[i].shortlist_vectors(cfg["skip_outside"]), sides[j].shortlist_vectors(cfg["skip_outside"]), cfg["thresh"], top_k=cfg["top_k"])
            label = f"{sides[i].vertical} + {sides[j].vertical}"
            msg.info(f"{component.name}: shortlist L of {label} {srsly.json_dumps(shortlist.summary())}")
            if shortlist.n_pairs() == 0:
                warnings.warn(
                    f"{component.name}: thresh={cfg['thresh']} leaves the shortlist L empty for {label} (best cosine similarity "
                    f"{shortlist.best_similarity:.3f}); these two verticals are trained with hard parameter sharing only"
                )
            emitters = [taggers[i].model.get_ref("emitter"), taggers[j].model.get_ref("emitter")]
            states[pair_key(i, j)] = cls(pair_key(i, j), (i, j), emitters, [sides[i], sides[j]], shortlist, component.grouped)
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
        """Draw up to n_pairs pairs of L (this direction) whose two contexts lie in the batch's docs.
        Returns (anchor contexts [m], column of the drawn partner in the anchor's partner list [m])."""
        a_side, p_side = (0, 1) if direction == 0 else (1, 0)
        offsets = self.sides[a_side].offsets
        anchors = numpy.concatenate([numpy.arange(offsets[i], offsets[i + 1]) for i in batch_docs[a_side]] or [numpy.zeros(0, dtype="int64")])
        partners = self.partners[direction]
        starts, counts = partners.indptr[anchors], partners.counts()[anchors]
        owner = numpy.repeat(anchors, counts)
        entries = numpy.repeat(starts - numpy.cumsum(counts) + counts, counts) + numpy.arange(int(counts.sum()))
        in_batch = numpy.zeros(len(self.sides[p_side].offsets) - 1, dtype=bool)
        in_batch[batch_docs[p_side]] = True
        eligible = numpy.flatnonzero(in_batch[self.partner_docs[direction][entries]])
        if len(eligible) > n_pairs:
            eligible = numpy.sort(numpy.random.choice(eligible, n_pairs, replace=False))
        chosen = entries[eligible]
        anchors = owner[eligible]
        return anchors, chosen - partners.indptr[anchors]

    def step(self, component: CouplingComponent, examples: List[Example], tokvecs: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        """weight * TCE on pairs drawn among the examples' contexts; returns (loss, d_tokvecs)."""
        positions: List[List[int]] = [[], []]  # batch positions of each side's docs
        batch_docs: List[List[int]] = [[], []]  # their doc ids in the side's tables
        for pos, eg in enumerate(examples):
            for s, side in enumerate(self.sides):
                doc_id = side.doc_ids.get(eg.reference.text) if get_vertical(eg.reference) == side.vertical else None
                if doc_id is not None:
                    positions[s].append(pos)
                    batch_docs[s].append(doc_id)
        ops = component.model.ops
        d_tokvecs = [ops.alloc2f(*t.shape) for t in tokvecs]
        if not all(batch_docs):
            return 0.0, d_tokvecs
        doc_arrays = [numpy.asarray(b, dtype="int64") for b in batch_docs]
        flats, backprops, rows = [], [], []
        for s in (0, 1):
            scores, backprop = self.emitters[s].begin_update([tokvecs[p] for p in positions[s]])
            flats.append(numpy.concatenate([ops.to_numpy(x) for x in scores]))
            backprops.append((backprop, [len(x) for x in scores]))
            start_of = numpy.zeros(len(self.sides[s].offsets) - 1, dtype="int64")
            start_of[doc_arrays[s]] = numpy.concatenate([[0], numpy.cumsum([len(x) for x in scores])[:-1]])
            rows.append(start_of)
        n_pairs = component.cfg["batch_size"]
        batches, gathers = [], []
        for d in (0, 1):
            a_side, p_side = (0, 1) if d == 0 else (1, 0)
            A, P = self.sides[a_side], self.sides[p_side]
            anchors, column = self._draw(d, doc_arrays, n_pairs)
            partners, mask = self._padded(d, anchors)
            sampled = numpy.zeros_like(mask)
            sampled[numpy.arange(len(anchors)), column] = True
            drawn = partners[numpy.arange(len(anchors)), column]
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
        weight = component.cfg["weight"]
        loss, backprop_loss = component.model.get_ref("loss").begin_update((self.key, *batches) if self.grouped else tuple(batches))
        grads = backprop_loss(component.model.ops.xp.full(loss.shape, weight, dtype="float32"))
        d_flats = [numpy.zeros_like(f) for f in flats]
        for (a_side, row_a, ya, p_side, row_p, yp, sampled), (d_anchor, d_partner) in zip(gathers, grads):
            numpy.add.at(d_flats[a_side], (row_a, ya), d_anchor)
            numpy.add.at(d_flats[p_side], (row_p, yp), d_partner[sampled])
        for s in (0, 1):
            backprop, lengths = backprops[s]
            d_side = backprop([ops.asarray2f(x) for x in numpy.split(d_flats[s], numpy.cumsum(lengths)[:-1])])
            for p, d in zip(positions[s], d_side):
                d_tokvecs[p] = d
        return float(loss) * weight, d_tokvecs

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


def split_vertical(joint: Path, tagger: str, output_dir: Path) -> Path:
    """Write the joint pipeline's ``tok2vec`` + ``tagger`` as a standalone vertical pipeline (component
    ``ave_tagger``, annotating every doc) to output_dir."""
    nlp = util.load_model(joint)
    vertical = nlp.get_pipe(tagger).vertical
    for name in list(nlp.pipe_names):
        if name not in ("tok2vec", tagger):
            nlp.remove_pipe(name)
    nlp.rename_pipe(tagger, "ave_tagger")
    nlp.get_pipe("ave_tagger").cfg["vertical"] = None
    nlp._pipe_configs["ave_tagger"]["vertical"] = None
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
    taggers = [nlp.get_pipe(name) for name in coupling.cfg["taggers"]]
    coupling._states = _TrainingState.build_all(coupling, taggers, examples)
    return coupling.label_attention()
