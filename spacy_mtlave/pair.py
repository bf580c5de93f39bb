"""Multi-task training pieces for ``spacy train``: the ``ave_coupling`` component, a corpus reader that keeps each
doc's vertical, and a batcher that draws every update from each vertical.

One joint pipeline ``tok2vec -> tagger_v1 -> tagger_v2 -> coupling`` is trained by spaCy's own loop: each
``ave_tagger`` (bound to its vertical) adds its CRF loss on its own vertical's examples, and ``ave_coupling.update``
adds lambda * TCE on a minibatch of anchor contexts drawn from the shortlist L, backpropagating into both taggers'
emission layers and the shared tok2vec. All gradients meet in ``finish_update``.
"""
import logging
import random
import warnings
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

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

from .coupling import CouplingLoss, PairBatch, label_label_attention
from .shortlist import Shortlist, build_shortlist, context_embeddings
from .vertical import get_vertical, set_vertical, slugify

logger = logging.getLogger("spacy_mtlave")
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


@util.registry.architectures("spacy_mtlave.CouplingModel.v1")
def build_coupling_model(k: int = 3, n_buckets: int = 4096, label_dim: int = 32) -> Model:
    """A wrapped :class:`CouplingLoss`; sized for the two taggers' tag sets when the component is initialized."""
    model = PyTorchWrapper(CouplingLoss(1, ["O"], ["O"], k=k, n_buckets=n_buckets, label_dim=label_dim), convert_inputs=_coupling_inputs)
    model.attrs["hyperparams"] = {"k": k, "n_buckets": n_buckets, "label_dim": label_dim}
    return model


def _coupling_inputs(model: Model, X: Tuple[PairBatch, PairBatch], is_train: bool):
    """Two numpy PairBatches -> torch; the gradient flows back to the gold-tag scores s_anchor and s_partner."""
    grad_fields = ("s_anchor", "s_partner")
    batches = tuple(
        PairBatch(**{f: xp2torch(getattr(b, f), requires_grad=is_train and f in grad_fields) if f in grad_fields else torch.from_numpy(getattr(b, f)) for f in PairBatch._fields})
        for b in X
    )

    def reverse(d: ArgsKwargs) -> List[Tuple[numpy.ndarray, numpy.ndarray]]:
        out = []
        for b, grads in zip(X, d.args):
            ds_anchor, ds_partner = grads[3], grads[4]
            out.append(tuple(numpy.zeros_like(getattr(b, f)) if g is None or not isinstance(g, torch.Tensor) or g.shape != getattr(b, f).shape else g.detach().numpy() for f, g in zip(grad_fields, (ds_anchor, ds_partner))))
        return out

    return ArgsKwargs(args=batches, kwargs={}), reverse


@Language.factory(
    "ave_coupling",
    default_config={
        "model": {"@architectures": "spacy_mtlave.CouplingModel.v1"},
        "taggers": ["tagger_v1", "tagger_v2"],
        "tok2vec": "tok2vec",
        "mode": "full",
        "weight": 1.0,
        "thresh": 0.8,
        "window": 1,
        "top_k": 10,
        "batch_size": 30,
    },
)
def make_ave_coupling(
    nlp: Language,
    name: str,
    model: Model,
    taggers: List[str],
    tok2vec: str,
    mode: str,
    weight: float,
    thresh: float,
    window: int,
    top_k: Optional[int],
    batch_size: int,
) -> "CouplingComponent":
    """The paper's coupling loss between two vertical-bound ``ave_tagger`` components sharing ``tok2vec``.

    mode: "none" (hard sharing only), "cce" (context attention), "lce" (label attention) or "full" (TCE).
    batch_size anchor contexts per update, half from each vertical, each with its (at most top_k) partners in L.
    """
    if mode not in MODES:
        raise ValueError(f"{name}: mode must be one of {MODES}, got {mode!r}")
    if len(taggers) != 2:
        raise ValueError(f"{name}: 'taggers' must name exactly two ave_tagger components, got {taggers}")
    cfg = {"taggers": taggers, "tok2vec": tok2vec, "mode": mode, "weight": weight, "thresh": thresh, "window": window, "top_k": top_k, "batch_size": batch_size}
    return CouplingComponent(nlp.vocab, model, name, cfg)


class CouplingComponent(TrainablePipe):
    """Adds lambda * TCE to training; does nothing to docs at inference."""

    def __init__(self, vocab: Vocab, model: Model, name: str, cfg: Dict) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        self.cfg = dict(cfg, tags1=[], tags2=[], dim=0)
        self.scorer = None
        self._state: Optional[_TrainingState] = None

    def _set_module(self) -> None:
        mode = self.cfg["mode"]
        self.model.shims[0]._model = CouplingLoss(
            max(self.cfg["dim"], 1), self.cfg["tags1"] or ["O"], self.cfg["tags2"] or ["O"], **self.model.attrs["hyperparams"],
            use_context=mode in ("cce", "full"), use_label=mode in ("lce", "full"),
        )

    @property
    def module(self) -> CouplingLoss:
        return self.model.shims[0]._model

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None) -> None:
        if nlp is None:
            raise ValueError(f"{self.name}: initialize needs the pipeline (nlp)")
        taggers = [nlp.get_pipe(name) for name in self.cfg["taggers"]]
        verticals = [t.vertical for t in taggers]
        if None in verticals or verticals[0] == verticals[1]:
            raise ValueError(f"{self.name}: the two taggers must be bound to two different verticals, got {verticals}")
        self.cfg["tags1"], self.cfg["tags2"] = taggers[0].tags, taggers[1].tags
        self.cfg["dim"] = nlp.vocab.vectors.shape[1]
        self._set_module()
        self._state = _TrainingState.build(self, nlp, taggers, list(get_examples()))

    def predict(self, docs: Iterable[Doc]) -> None:
        return None

    def set_annotations(self, docs: Iterable[Doc], predictions: None) -> None:
        return None

    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd: Optional[Optimizer] = None, losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        state = self._state
        if state is None or self.cfg["mode"] == "none" or not state.has_pairs:
            return losses
        losses[self.name] += state.step(self, self.cfg["batch_size"] // 2 or 1)
        if sgd is not None:
            self.finish_update(sgd)
        return losses

    def label_attention(self) -> Dict:
        """Mean attention per (tag of v1, tag of v2) over all of L, both directions, context and label terms."""
        if self._state is None:
            raise ValueError(f"{self.name}: label attention needs the training state (initialize first)")
        return self._state.label_attention(self)

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        return util.to_bytes({"cfg": lambda: srsly.json_dumps(self.cfg), "model": self.model.to_bytes}, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()) -> "CouplingComponent":
        msg = srsly.msgpack_loads(bytes_data)
        self.cfg.update(srsly.json_loads(msg["cfg"]))
        self._set_module()
        self.model.from_bytes(msg["model"])
        return self

    def to_disk(self, path, *, exclude=tuple()) -> None:
        path = util.ensure_path(path)
        util.to_disk(path, {"cfg": lambda p: srsly.write_json(p, self.cfg), "model": lambda p: self.model.to_disk(p)}, exclude)

    def from_disk(self, path, *, exclude=tuple()) -> "CouplingComponent":
        path = Path(path)
        self.cfg.update(srsly.read_json(path / "cfg"))
        self._set_module()
        self.model.from_bytes((path / "model").read_bytes())
        return self


class _VerticalContexts:
    """The training docs of one vertical and its contexts: window embeddings U [n, d], (doc, token) index [n, 2],
    gold tag id per context [n]."""

    def __init__(self, docs: List[Doc], gold: List[List[int]], window: int):
        self.docs = docs
        self.U, self.index = context_embeddings(docs, window)
        self.tags = numpy.concatenate([numpy.asarray(g, dtype="int64") for g in gold])
        self.offsets = numpy.concatenate([[0], numpy.cumsum([len(d) for d in docs])])


class _TrainingState:
    """What the coupling needs during training (not serialized): both verticals' contexts and the shortlist."""

    def __init__(self, tok2vec: Model, emitters: List[Model], sides: List[_VerticalContexts], shortlist: Shortlist):
        self.tok2vec, self.emitters, self.sides, self.shortlist = tok2vec, emitters, sides, shortlist
        self.anchors = [numpy.flatnonzero(shortlist.partners_12.counts()), numpy.flatnonzero(shortlist.partners_21.counts())]
        self.has_pairs = all(len(a) for a in self.anchors)

    @classmethod
    def build(cls, component: CouplingComponent, nlp: Language, taggers: List, examples: List[Example]) -> "_TrainingState":
        cfg = component.cfg
        sides = []
        for tagger in taggers:
            own = [eg for eg in examples if get_vertical(eg.reference) == tagger.vertical]
            gold = tagger.gold_tag_ids(own)
            kept = [(eg.predicted, g) for eg, g in zip(own, gold) if g is not None and len(g)]
            if not kept:
                raise ValueError(f"{component.name}: vertical {tagger.vertical!r} has no usable training docs")
            sides.append(_VerticalContexts([d for d, _ in kept], [g for _, g in kept], cfg["window"]))
        shortlist = build_shortlist(sides[0].U, sides[1].U, cfg["thresh"], top_k=cfg["top_k"])
        summary = shortlist.summary()
        logger.info("shortlist L: %s", srsly.json_dumps(summary))
        if shortlist.n_pairs() == 0:
            warnings.warn(
                f"{component.name}: thresh={cfg['thresh']} leaves the shortlist L empty (best cosine similarity "
                f"{shortlist.best_similarity:.3f}); training with hard parameter sharing only"
            )
        tok2vec = nlp.get_pipe(cfg["tok2vec"]).model
        return cls(tok2vec, [t.model.get_ref("emitter") for t in taggers], sides, shortlist)

    def _directional(self, direction: int, anchors: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
        """anchors [n] -> padded partners [n, K], mask [n, K]; direction 0 is v1->v2, 1 is v2->v1."""
        partners = self.shortlist.partners_12 if direction == 0 else self.shortlist.partners_21
        lists = [partners[int(a)][0] for a in anchors]
        width = max((len(p) for p in lists), default=1) or 1
        padded = numpy.zeros((len(anchors), width), dtype="int64")
        mask = numpy.zeros((len(anchors), width), dtype=bool)
        for i, p in enumerate(lists):
            padded[i, : len(p)] = p
            mask[i, : len(p)] = True
        return anchors.astype("int64"), padded, mask

    def step(self, component: CouplingComponent, n_anchors: int) -> float:
        """One coupling update: sample anchors in both directions, score their docs, backprop weight * TCE."""
        picks = [self._directional(d, numpy.asarray(random.sample(list(self.anchors[d]), min(n_anchors, len(self.anchors[d]))))) for d in (0, 1)]
        # contexts needed per side: anchors of one direction are partners of the other
        needed = [numpy.concatenate([picks[0][0], picks[1][1][picks[1][2]]]), numpy.concatenate([picks[1][0], picks[0][1][picks[0][2]]])]
        doc_ids = [numpy.unique(self.sides[s].index[needed[s], 0]) for s in (0, 1)]
        docs = [self.sides[s].docs[i] for s in (0, 1) for i in doc_ids[s]]
        tokvecs, backprop_tok2vec = self.tok2vec.begin_update(docs)
        n1 = len(doc_ids[0])
        scores, backprops, flats, rows = [], [], [], []
        for s, part in enumerate((tokvecs[:n1], tokvecs[n1:])):
            sc, bp = self.emitters[s].begin_update(part)
            scores.append(sc)
            backprops.append(bp)
            flats.append(numpy.concatenate([numpy.asarray(x) for x in sc]))
            # context id -> row in the flat score matrix of this step's docs
            lengths = numpy.asarray([len(self.sides[s].docs[i]) for i in doc_ids[s]])
            starts = numpy.zeros(len(self.sides[s].docs), dtype="int64")
            starts[doc_ids[s]] = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]])
            rows.append(lambda c, s=s, starts=starts: starts[self.sides[s].index[c, 0]] + self.sides[s].index[c, 1])
        batches = []
        gathers = []
        for d, (anchors, partners, mask) in enumerate(picks):
            a_side, p_side = (0, 1) if d == 0 else (1, 0)
            A, P = self.sides[a_side], self.sides[p_side]
            ra, rp = rows[a_side](anchors), rows[p_side](partners)
            ya, yp = A.tags[anchors], P.tags[partners]
            batches.append(PairBatch(
                u_anchor=A.U[anchors], u_partner=P.U[partners], mask=mask,
                s_anchor=flats[a_side][ra, ya].astype("float32"), s_partner=flats[p_side][rp, yp].astype("float32"),
                y_anchor=ya, y_partner=yp,
            ))
            gathers.append((a_side, ra, ya, p_side, rp, yp))
        loss, backprop_coupling = component.model.begin_update(tuple(batches))
        weight = component.cfg["weight"]
        grads = backprop_coupling(numpy.asarray(weight, dtype="float32").reshape(numpy.shape(loss)))
        d_flats = [numpy.zeros_like(f) for f in flats]
        for (a_side, ra, ya, p_side, rp, yp), (d_anchor, d_partner), (_, _, mask) in zip(gathers, grads, picks):
            numpy.add.at(d_flats[a_side], (ra, ya), d_anchor)
            numpy.add.at(d_flats[p_side], (rp[mask], yp[mask]), d_partner[mask])
        d_tokvecs = []
        for s in (0, 1):
            splits = numpy.cumsum([len(x) for x in scores[s]])[:-1]
            d_tokvecs.extend(backprops[s]([self.tok2vec.ops.asarray2f(x) for x in numpy.split(d_flats[s], splits)]))
        backprop_tok2vec(d_tokvecs)
        return float(loss) * weight

    def label_attention(self, component: CouplingComponent) -> Dict:
        module = component.module
        out: Dict = {"tags1": component.cfg["tags1"], "tags2": component.cfg["tags2"], "shortlist": self.shortlist.summary()}
        for d, key in ((0, "12"), (1, "21")):
            anchors, partners, mask = self._directional(d, self.anchors[d])
            a_side, p_side = (0, 1) if d == 0 else (1, 0)
            A, P = self.sides[a_side], self.sides[p_side]
            batch = PairBatch(
                u_anchor=torch.from_numpy(A.U[anchors]), u_partner=torch.from_numpy(P.U[partners]), mask=torch.from_numpy(mask),
                s_anchor=torch.zeros(len(anchors)), s_partner=torch.zeros(mask.shape),
                y_anchor=torch.from_numpy(A.tags[anchors]), y_partner=torch.from_numpy(P.tags[partners]),
            )
            n_a, n_p = len(component.cfg[f"tags{a_side + 1}"]), len(component.cfg[f"tags{p_side + 1}"])
            with torch.no_grad():
                for kind, attention in (("context", module.context_attention(batch, key)), ("label", module.label_attention(batch, key))):
                    out[f"{kind}_{key}"] = label_label_attention(attention.numpy(), A.tags[anchors], P.tags[partners], mask, n_a, n_p).tolist()
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


def label_attention(joint: Path, train_paths: Sequence[Path]) -> Dict:
    """The trained coupling's mean label-label attention over the shortlist of the training corpora."""
    nlp = util.load_model(joint)
    examples = list(create_vertical_corpus({f"v{i}": str(p) for i, p in enumerate(train_paths, start=1)})(nlp))
    coupling: CouplingComponent = nlp.get_pipe("coupling")
    taggers = [nlp.get_pipe(name) for name in coupling.cfg["taggers"]]
    coupling._state = _TrainingState.build(coupling, nlp, taggers, examples)
    return dict(coupling.label_attention(), verticals=[t.vertical for t in taggers])
