"""The coupling's training state for one pair of verticals (not serialized): both verticals' contexts (window
embeddings, gold tags), their heads and the shortlist L; :meth:`PairState.step` computes weight * TCE on the pairs
of L among a batch's docs and its gradient to the shared tok2vec."""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
import srsly
import torch
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Model, xp2torch
from thinc.types import Floats2d
from wasabi import msg

from ..ml.compared_scores import transform_scores
from ..ml.coupling_loss import CouplingLoss, PairBatch, attention_by_tags, pair_key
from ..ml.shortlist import Shortlist, build_shortlist, context_embeddings
from ..ml.tagger_model import crf_module
from ..vertical import get_vertical


class VerticalContexts:
    """The training docs of one vertical and its contexts: window embeddings U [n, d], (doc, token) index [n, 2],
    gold tag id per context [n], first context of each doc ``offsets`` [n_docs + 1], and doc text -> doc index."""

    def __init__(self, vertical: str, docs: List[Doc], gold: List[List[int]], window: int):
        self.vertical = vertical
        self.U, self.index = context_embeddings(docs, window)
        self.tags = numpy.concatenate([numpy.asarray(g, dtype="int64") for g in gold])
        self.offsets = numpy.concatenate([[0], numpy.cumsum([len(d) for d in docs])]).astype("int64")
        self.doc_ids = {doc.text: i for i, doc in enumerate(docs)}

    @classmethod
    def build(cls, name: str, window: int, tagger, examples: List[Example]) -> "VerticalContexts":
        """The contexts of ``tagger``'s vertical in ``examples`` (``name``: the coupling component, for errors)."""
        own = [eg for eg in examples if get_vertical(eg.reference) == tagger.vertical]
        gold = tagger.gold_tag_ids(own)
        kept = [(eg.predicted, g) for eg, g in zip(own, gold) if g is not None and len(g)]
        if not kept:
            raise ValueError(f"{name}: vertical {tagger.vertical!r} has no usable training docs")
        return cls(tagger.vertical, [d for d, _ in kept], [g for _, g in kept], window)

    def shortlist_vectors(self, skip_outside: bool) -> numpy.ndarray:
        """U, with the rows of ``O`` contexts zeroed when skip_outside (a zero window embedding never matches)."""
        return self.U * (self.tags != 0)[:, None] if skip_outside else self.U

    def in_batch(self, doc_ids: numpy.ndarray) -> numpy.ndarray:
        """bool [n_docs]: which of this vertical's docs are among ``doc_ids``."""
        out = numpy.zeros(len(self.offsets) - 1, dtype=bool)
        out[doc_ids] = True
        return out


class PairState:
    """What the coupling of one pair of verticals needs during training (not serialized): both verticals' contexts,
    their heads (emission layer and CRF) and the shortlist L, with a count of how often each pair of L is used."""

    def __init__(self, key: str, positions: Tuple[int, int], heads: List[Model], sides: List[VerticalContexts], shortlist: Shortlist, grouped: bool):
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
    def build_all(
        cls, name: str, cfg: Dict, pair_ids: Sequence[Tuple[int, int]], symmetric: bool, grouped: bool, taggers: List, examples: List[Example]
    ) -> Dict[str, "PairState"]:
        """One state per coupled pair of taggers (``pair_ids``: positions in ``taggers``), keyed like the
        PairwiseCouplingLoss (``"i-j"``). ``cfg``: the component's ``window``, ``thresh``, ``top_k`` and
        ``skip_outside``; ``symmetric``: L as one set of pairs (pairing "all"); ``name``: the component, for logs."""
        sides = [VerticalContexts.build(name, cfg["window"], tagger, examples) for tagger in taggers]
        states = {}
        for i, j in pair_ids:
            shortlist = build_shortlist(sides[i].shortlist_vectors(cfg["skip_outside"]), sides[j].shortlist_vectors(cfg["skip_outside"]), cfg["thresh"], top_k=cfg["top_k"])
            if symmetric:
                shortlist = shortlist.symmetric()
            label = f"{sides[i].vertical} + {sides[j].vertical}"
            msg.info(f"{name}: shortlist L of {label} {srsly.json_dumps(shortlist.summary())}")
            if shortlist.n_pairs() == 0:
                warnings.warn(
                    f"{name}: thresh={cfg['thresh']} leaves the shortlist L empty for {label} (best cosine similarity "
                    f"{shortlist.best_similarity:.3f}); these two verticals are trained with hard parameter sharing only"
                )
            heads = [taggers[i].model, taggers[j].model]
            states[pair_key(i, j)] = cls(pair_key(i, j), (i, j), heads, [sides[i], sides[j]], shortlist, grouped)
        return states

    def padded(self, direction: int, anchors: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
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
            partners, mask = self.padded(d, anchors)
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
        """Updates coupled, pairs of L used per update (mean, min, max, and each update's count) and uses per pair of
        L over the run (mean, max, share never used, 10/50/90th percentiles). Pairing "drawn" counts a pair once per direction it was drawn in."""
        per_update = numpy.asarray(self.pairs_per_update or [0])
        uses = self.uses if not self.uses_21.any() else numpy.concatenate([self.uses, self.uses_21])
        n_pairs = int(self.shortlist.n_pairs())
        return {
            "pairs_in_L": n_pairs,
            "updates": len(self.pairs_per_update),
            "pairs_per_update": {"mean": float(per_update.mean()), "min": int(per_update.min()), "max": int(per_update.max()), "each": [int(n) for n in self.pairs_per_update]},
            "uses_per_pair": {
                "mean": float(uses.sum() / max(n_pairs, 1)),
                "max": int(uses.max(initial=0)),
                "never_used": float(numpy.mean(uses == 0)) if len(uses) else 0.0,
                "quantiles": {q: int(numpy.quantile(uses, q / 100)) if len(uses) else 0 for q in (10, 50, 90)},
            },
        }

    def attention_by_tags(self, module: CouplingLoss, tag_lists: Sequence[Sequence[str]]) -> Dict:
        """Mean context and label attention per (tag of v1, tag of v2) over all of L, both directions, under this
        pair's ``module``; ``tag_lists``: every coupled tagger's tags."""
        tags = [list(tag_lists[p]) for p in self.positions]
        out: Dict = {"verticals": [side.vertical for side in self.sides], "tags1": tags[0], "tags2": tags[1], "shortlist": self.shortlist.summary()}
        for d, key in ((0, "12"), (1, "21")):
            anchors = numpy.flatnonzero(self.partners[d].counts())
            partners, mask = self.padded(d, anchors)
            a_side, p_side = (0, 1) if d == 0 else (1, 0)
            A, P = self.sides[a_side], self.sides[p_side]
            device = module.a1.device
            batch = PairBatch(*(xp2torch(x, device=device) for x in (
                A.U[anchors], P.U[partners], mask, numpy.zeros(len(anchors), "float32"), numpy.zeros(mask.shape, "float32"), A.tags[anchors], P.tags[partners],
            )))
            n_a, n_p = len(tags[a_side]), len(tags[p_side])
            with torch.no_grad():
                for kind, attention in (("context", module.context_attention(batch, key)), ("label", module.label_attention(batch, key))):
                    out[f"{kind}_{key}"] = attention_by_tags(attention.cpu().numpy(), A.tags[anchors], P.tags[partners], mask, n_a, n_p).tolist()
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

