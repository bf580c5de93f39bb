"""The ``ave_tagger`` component: tok2vec -> emission scores -> linear-chain CRF -> ``doc.ents``, ``doc.spans`` and
``span._.confidence``."""
import warnings
from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.attrs import ENT_IOB, IS_SPACE, ORTH, SPACY
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.pipeline.tok2vec import Tok2VecListener
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, xp2torch
from thinc.types import Floats2d

from ..bio import biluo_to_bio, bio_from_spans, bio_tags, partial_allowed_tags, spans_from_bio
from ..label_coverage import is_partial, known_attributes
from ..ml.crf_numpy import numpy_crf
from ..ml.device import module_device
from ..ml.tagger_model import crf_module, length_buckets, pad_scores, set_n_tags
from ..ml.value_features import known_values, set_known_values
from ..vertical import get_vertical
from .serialize import SizedFromCfg

SPANS_KEY = "attributes"
# which docs learn from partial labels (issue 16), and which attributes their unlabelled tokens may hold
PARTIAL_LABELS = ("off", "flagged", "all")
UNLABELLED_AS = ("absent", "any")
TOKEN_ATTRS = [ORTH, SPACY]

if not Span.has_extension("confidence"):
    Span.set_extension("confidence", default=None)

# the default model of ``nlp.add_pipe("ave_tagger")`` (as spaCy's own pipes have one): its own BiLSTM-CRF encoder over
# hashed NORM/PREFIX/SUFFIX/SHAPE features and characters (static vectors need a vectors table: see the shipped configs)
DEFAULT_AVE_TAGGER_MODEL = """
[model]
@architectures = "spacy_mtlave.BiLSTMCRFTagger.v1"
nO = null

[model.tok2vec]
@architectures = "spacy.Tok2Vec.v2"

[model.tok2vec.embed]
@architectures = "spacy_mtlave.WordCharEmbed.v2"
width = 128
attrs = ["NORM","PREFIX","SUFFIX","SHAPE"]
rows = [5000,1000,2500,2500]
include_static_vectors = false
char_dim = 32
char_width = 64
max_chars = 20

[model.tok2vec.encode]
@architectures = "spacy_mtlave.BiLSTMEncoder.v1"
width = 128
hidden_width = 256
depth = 1
dropout = 0.25
"""
DEFAULT_TAGGER_MODEL = Config().from_str(DEFAULT_AVE_TAGGER_MODEL)["model"]



def span_mean(probs: numpy.ndarray, start: int, end: int) -> float:
    """``float(probs[start:end].mean())`` for float probs [n], bit for bit (numpy's sum in the array's dtype, then a
    float64 division rounded to that dtype), without ``ndarray.mean``'s Python overhead."""
    if end - start == 1:
        return float(probs[start])
    return float(probs.dtype.type(float(numpy.add.reduce(probs[start:end])) / (end - start)))


def same_tokens_bio(example: Example) -> Optional[List[str]]:
    """BIO tags of the reference entities when both docs have the same tokens (ORTH and trailing space) and every
    reference token is annotated, in which case they equal what ``Example.get_aligned_ner`` gives (no alignment or
    Token objects needed); None otherwise."""
    x, y = example.predicted, example.reference
    if len(x) != len(y) or not numpy.array_equal(x.to_array(TOKEN_ATTRS), y.to_array(TOKEN_ATTRS)):
        return None
    if len(y) and not numpy.isin(y.to_array(ENT_IOB), (1, 2, 3)).all():  # 0: missing annotation
        return None
    if any(not ent.label_ for ent in y.ents):
        return None
    return bio_from_spans(len(y), [(ent.start, ent.end, ent.label_) for ent in y.ents])


@Language.factory(
    "ave_tagger",
    assigns=["doc.ents", "doc.spans", "span._.confidence"],
    default_config={
        "model": DEFAULT_TAGGER_MODEL,
        "vertical": None,
        "bio_constraints": True,
        "partial_labels": "off",
        "unlabelled_as": "absent",
        "unlabelled_o_weight": 0.0,
        "min_confidence": 0.0,
        "spans_key": SPANS_KEY,
        "scorer": {"@scorers": "spacy_mtlave.ave_scorer.v1"},
    },
    default_score_weights={"ave_macro_f": 1.0, "ave_macro_p": 0.0, "ave_macro_r": 0.0, "ave_acc": 0.0, "ents_f": 0.0, "ents_p": 0.0, "ents_r": 0.0},
)
def make_ave_tagger(
    nlp: Language,
    name: str,
    model: Model[List[Doc], List[Floats2d]],
    vertical: Optional[str],
    bio_constraints: bool,
    partial_labels: str,
    unlabelled_as: str,
    unlabelled_o_weight: float,
    min_confidence: float,
    spans_key: str,
    scorer: Optional[Callable],
) -> "AVETagger":
    """Attribute-value tagger. ``vertical``: if set, the component only learns from and annotates docs whose
    ``doc._.vertical`` is this vertical or unset (used when several verticals share one pipeline).
    ``partial_labels``: which training docs have incomplete labels and learn with the partial-label loss (the
    likelihood of every tag sequence consistent with their known spans): ``off`` (none: every unlabelled token is
    ``O``), ``flagged`` (docs with ``doc._.partial_labels``, e.g. from ``convert --format specs``) or ``all``.
    ``unlabelled_as``: what an unlabelled token of such a doc may be besides ``O``: ``absent`` (a value of an
    attribute the doc's source did not list, ``doc._.known_attributes``) or ``any`` attribute.
    ``unlabelled_o_weight`` w in [0, 1]: such docs learn from (1 - w) x the partial-label loss + w x the full-label
    loss (unlabelled tokens as ``O``), a prior towards ``O`` for what no label covers.
    ``min_confidence``: a predicted span whose confidence (mean marginal of its tags) is below this is not written
    (neither to ``doc.ents`` nor to ``doc.spans``): a precision/recall knob applied at prediction only, changeable
    when loading (``spacy.load(path, config={"components": {name: {"min_confidence": 0.5}}})``); 0 keeps every span."""
    return AVETagger(
        nlp.vocab, model, name, vertical=vertical, bio_constraints=bio_constraints, partial_labels=partial_labels,
        unlabelled_as=unlabelled_as, unlabelled_o_weight=unlabelled_o_weight, min_confidence=min_confidence,
        spans_key=spans_key, scorer=scorer,
    )


def set_min_confidence(nlp: Language, value: float) -> int:
    """Set ``min_confidence`` on every ``ave_tagger`` of a loaded pipeline; returns how many there are."""
    taggers = [pipe for _, pipe in nlp.pipeline if isinstance(pipe, AVETagger)]
    for tagger in taggers:
        tagger.set_min_confidence(value)
    return len(taggers)


class AVETagger(SizedFromCfg, TrainablePipe):
    """BIO tagging with a CRF; writes ``doc.ents``, ``doc.spans[spans_key]`` and ``span._.confidence``
    (the mean CRF marginal probability of the span's tags)."""

    settings_keys = ("vertical", "partial_labels", "unlabelled_as", "unlabelled_o_weight", "min_confidence")

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "ave_tagger",
        *,
        vertical: Optional[str] = None,
        bio_constraints: bool = True,
        partial_labels: str = "off",
        unlabelled_as: str = "absent",
        unlabelled_o_weight: float = 0.0,
        min_confidence: float = 0.0,
        spans_key: str = SPANS_KEY,
        scorer: Optional[Callable] = None,
    ) -> None:
        if partial_labels not in PARTIAL_LABELS:
            raise ValueError(f"{name}: partial_labels must be one of {', '.join(PARTIAL_LABELS)}, got {partial_labels!r}")
        if unlabelled_as not in UNLABELLED_AS:
            raise ValueError(f"{name}: unlabelled_as must be one of {', '.join(UNLABELLED_AS)}, got {unlabelled_as!r}")
        if not 0.0 <= unlabelled_o_weight <= 1.0:
            raise ValueError(f"{name}: unlabelled_o_weight must be in [0, 1], got {unlabelled_o_weight!r}")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"{name}: min_confidence must be in [0, 1], got {min_confidence!r}")
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.n_inconsistent = 0  # partially labelled docs skipped because no tag sequence fits their known spans
        self.cfg = {
            "labels": [], "vertical": vertical, "bio_constraints": bio_constraints, "partial_labels": partial_labels,
            "unlabelled_as": unlabelled_as, "unlabelled_o_weight": unlabelled_o_weight, "min_confidence": min_confidence,
            "spans_key": spans_key,
        }

    def set_min_confidence(self, value: float) -> None:
        """Change the prediction-time confidence floor (``min_confidence``) of a loaded tagger."""
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{self.name}: min_confidence must be in [0, 1], got {value!r}")
        self.cfg["min_confidence"] = float(value)

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def tags(self) -> List[str]:
        return bio_tags(self.labels)

    @property
    def vertical(self) -> Optional[str]:
        return self.cfg["vertical"]

    def add_label(self, label: str) -> int:
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{self.name}: a label must be a non-empty string, got {label!r}")
        if label in self.cfg["labels"]:
            return 0
        self._allow_resizing()
        self.cfg["labels"] = sorted(self.cfg["labels"] + [label])
        return 1

    def _allow_resizing(self) -> None:
        if self.model.has_dim("nO") and self.model.get_dim("nO") is not None and self.model.get_ref("emitter").layers[0].has_param("W"):
            raise ValueError(f"{self.name}: cannot add labels to a trained tagger")

    def _rebuild(self) -> None:
        tags = self.tags
        set_n_tags(self.model, len(tags))
        crf = crf_module(self.model)
        if self.cfg["bio_constraints"]:
            crf.set_bio_constraints(tags)

    def accepts(self, doc: Doc) -> bool:
        """Whether this tagger is responsible for ``doc`` (its vertical, or no vertical given)."""
        vertical = get_vertical(doc)
        return self.vertical is None or vertical is None or vertical == self.vertical

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None, labels: Optional[List[str]] = None) -> None:
        validate_get_examples(get_examples, f"{self.name}.initialize")
        examples = [eg for eg in get_examples() if self.accepts(eg.reference)]
        if labels is None:
            labels = sorted({ent.label_ for eg in examples for ent in eg.reference.ents})
        for label in labels:
            self.add_label(label)
        if not self.labels:
            raise ValueError(f"{self.name}: no attribute labels found in the training examples" + (f" of vertical {self.vertical!r}" if self.vertical else ""))
        self._rebuild()
        misaligned = sum(1 for eg in examples if self._gold_tags(eg) is None)
        if misaligned:
            warnings.warn(f"{self.name}: {misaligned} of {len(examples)} training examples have gold spans that do not align with tokens; they are skipped in training")
        if self.model.has_ref("values"):  # spacy_mtlave.BiLSTMCRFTagger.v2: the dictionary of known values
            set_known_values(self.model, known_values(self._gold_spans(examples)), self.tags)
        sample = [eg.predicted for eg in islice(examples, 10)] or [Doc(self.vocab, words=["x"])]
        self.model.initialize(X=sample)

    def predict(self, docs: Iterable[Doc]) -> List[Tuple[List[int], numpy.ndarray]]:
        """docs -> per doc (tag ids [n], marginal probability of each chosen tag [n])."""
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return [([], numpy.zeros(0, dtype="float32")) for _ in docs]
        scores = self.model.predict(docs)
        return self.decode(scores)

    def decode(self, scores: Sequence[Floats2d]) -> List[Tuple[List[int], numpy.ndarray]]:
        """Viterbi paths and the marginal of each chosen tag, in length buckets (a doc is never padded to more than
        twice its length, so one long description does not slow down a batch of titles)."""
        crf = crf_module(self.model)
        scores = [self.model.ops.to_numpy(s) for s in scores]
        out: List[Tuple[List[int], numpy.ndarray]] = [([], numpy.zeros(0, dtype="float32"))] * len(scores)
        device = module_device(self.model.get_ref("crf"))
        on_cpu = device.type == "cpu"
        # numpy inference: no per-step torch overhead (same outputs); the snapshot is kept while the parameters stay
        fast = numpy_crf(crf) if on_cpu else None
        for bucket in length_buckets([len(s) for s in scores]):
            emissions, mask = pad_scores([scores[i] for i in bucket], len(self.tags))
            if fast is not None:
                paths = fast.decode(emissions, mask, constrained=self.cfg["bio_constraints"])
                marginals = fast.marginals(emissions, mask)
            else:
                with torch.no_grad():
                    em, m = xp2torch(emissions, device=device), xp2torch(mask, device=device)
                    paths = crf.decode(em, m, constrained=self.cfg["bio_constraints"])
                    marginals = crf.marginals(em, m).cpu().numpy()
            for row, (i, path) in enumerate(zip(bucket, paths)):
                out[i] = (path, marginals[row, numpy.arange(len(path)), path])
        return out

    def set_annotations(self, docs: Iterable[Doc], predictions: List[Tuple[List[int], numpy.ndarray]]) -> None:
        tags = self.tags
        key = self.cfg["spans_key"]
        floor = self.cfg.get("min_confidence", 0.0)
        for doc, (path, probs) in zip(docs, predictions):
            if not self.accepts(doc):
                continue
            spans = []
            found = spans_from_bio([tags[t] for t in path])
            space = doc.to_array(IS_SPACE).tolist() if found else []  # token.is_space, without Token objects
            for start, end, label in found:
                while start < end and space[start]:  # an attribute value never starts or ends with whitespace
                    start += 1
                while end > start and space[end - 1]:
                    end -= 1
                if start == end:
                    continue
                confidence = span_mean(probs, start, end)
                if confidence < floor:
                    continue
                span = Span(doc, start, end, label=label)
                span._.confidence = confidence
                spans.append(span)
            doc.set_ents(spans, default="outside")
            doc.spans[key] = spans

    def _gold_spans(self, examples: Iterable[Example]) -> Iterable[Tuple[str, List[str]]]:
        """(label, token texts) of every gold span on the predicted tokens of the aligned examples."""
        for eg in examples:
            tags = self._gold_tags(eg)
            if tags is not None:
                for start, end, label in spans_from_bio(tags):
                    yield label, [t.text for t in eg.predicted[start:end]]

    def _gold_tags(self, example: Example) -> Optional[List[str]]:
        """BIO tags of the reference entities on the predicted tokens, None if any token is misaligned."""
        same = same_tokens_bio(example)
        if same is not None:
            return same
        biluo = example.get_aligned_ner()
        if any(tag is None or tag == "-" for tag in biluo):
            return None
        return [biluo_to_bio(t) for t in biluo]

    def gold_tag_ids(self, examples: Sequence[Example]) -> List[Optional[List[int]]]:
        """Per example: gold tag ids on its predicted tokens, or None when it is not this tagger's to learn
        (other vertical, misaligned gold). Labels unknown to the tagger become ``O``."""
        index = {tag: i for i, tag in enumerate(self.tags)}
        out: List[Optional[List[int]]] = []
        for eg in examples:
            tags = self._gold_tags(eg) if self.accepts(eg.reference) else None
            out.append(None if tags is None else [index.get(t, 0) for t in tags])
        return out

    def get_loss(self, examples: Iterable[Example], scores: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        """CRF negative log-likelihood summed over the examples; accumulates the CRF's gradients as a side effect.

        Returns (loss, d_scores) with d_scores [n_tokens, n_tags] per doc (zeros for skipped examples).
        """
        examples = list(examples)
        gold = self.gold_tag_ids(examples)
        d_scores = [self.model.ops.alloc2f(*s.shape) for s in scores]
        rows = [i for i, g in enumerate(gold) if g is not None and len(g)]
        if not rows:
            return 0.0, d_scores
        n_tags = len(self.tags)
        emissions, mask = pad_scores([self.model.ops.to_numpy(scores[i]) for i in rows], n_tags)
        tags = numpy.zeros(mask.shape, dtype="int64")
        for r, i in enumerate(rows):
            tags[r, : len(gold[i])] = gold[i]
        allowed = self._partial_allowed([examples[i] for i in rows], [gold[i] for i in rows], mask.shape)
        if allowed is None:
            nll, backprop_crf = self.model.get_ref("crf").begin_update((emissions, tags, mask))
        else:
            rows, emissions, tags, mask, allowed = self._consistent_rows(rows, examples, emissions, tags, mask, allowed)
            if not rows:
                return 0.0, d_scores
            nll, backprop_crf = self.model.get_ref("crf").begin_update((emissions, tags, mask, allowed, self.cfg["bio_constraints"]))
            weight = float(self.cfg.get("unlabelled_o_weight", 0.0))
            if weight > 0:  # (1 - w) x partial + w x full-label loss; both backprops add to the CRF's gradients
                full, backprop_full = self.model.get_ref("crf").begin_update((emissions, tags, mask))
                d_full = backprop_full(self.model.ops.xp.full_like(full, weight))
                d_partial = backprop_crf(self.model.ops.xp.full_like(nll, 1.0 - weight))
                nll = (1.0 - weight) * nll + weight * full
                backprop_crf = lambda _: d_partial + d_full  # noqa: E731
        d_emissions = backprop_crf(self.model.ops.xp.ones_like(nll))
        for r, i in enumerate(rows):
            d_scores[i] = self.model.ops.asarray2f(d_emissions[r, : len(scores[i])])
        return float(nll.sum()), d_scores

    def learns_partially(self, doc: Doc) -> bool:
        """Whether ``doc`` (a reference doc) is trained with the partial-label loss."""
        mode = self.cfg.get("partial_labels", "off")
        return mode == "all" or (mode == "flagged" and is_partial(doc))

    def _partial_allowed(self, examples: Sequence[Example], gold: Sequence[List[int]], shape: Tuple[int, int]) -> Optional[numpy.ndarray]:
        """The tags each token may take [B, L, T] bool (one-hot for fully labelled docs), or None when every
        example is fully labelled (the full-label loss, unchanged)."""
        partial = [self.learns_partially(eg.reference) for eg in examples]
        if not any(partial):
            return None
        tags = self.tags
        allowed = numpy.zeros((*shape, len(tags)), dtype=bool)
        for r, (eg, ids, flag) in enumerate(zip(examples, gold, partial)):
            if not flag:
                allowed[r, numpy.arange(len(ids)), ids] = True
                continue
            unlabelled = set(self.labels)
            if self.cfg.get("unlabelled_as", "absent") == "absent":
                unlabelled -= set(known_attributes(eg.reference))
            allowed[r, : len(ids)] = partial_allowed_tags([tags[t] for t in ids], tags, unlabelled)
        return allowed

    def _consistent_rows(self, rows, examples, emissions, tags, mask, allowed):
        """Drop the rows whose allowed tags leave no BIO-valid sequence (a counted warning naming the doc): such a
        doc is skipped for this update, never a NaN loss."""
        crf = crf_module(self.model)
        ok = crf.has_consistent_path(torch.from_numpy(allowed), torch.from_numpy(mask), self.cfg["bio_constraints"]).numpy()
        for r in numpy.flatnonzero(~ok):
            self.n_inconsistent += 1
            text = examples[rows[r]].reference.text
            warnings.warn(
                f"{self.name}: no tag sequence fits the known spans of doc {text[:60]!r}; skipped in this update "
                f"({self.n_inconsistent} so far)"
            )
        keep = numpy.flatnonzero(ok)
        return [rows[r] for r in keep], emissions[keep], tags[keep], mask[keep], allowed[keep]

    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd: Optional[Optimizer] = None, losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        if not any(len(eg.predicted) for eg in examples):
            return losses
        docs = [eg.predicted for eg in examples]
        if any(self.accepts(eg.reference) for eg in examples):
            scores, backprop = self.model.begin_update(docs)
            loss, d_scores = self.get_loss(examples, scores)
            backprop(d_scores)
            losses[self.name] += loss
        elif isinstance(self.model.get_ref("tok2vec"), Tok2VecListener):
            # a vertical-bound tagger with none of its docs in the batch has no loss: skip the emission layer and the
            # CRF (a train-group step then costs the same whatever the number of heads), but answer the shared
            # tok2vec's listener call with zeros: the last listener is the one that runs the tok2vec's backprop
            tokvecs, backprop_tok2vec = self.model.get_ref("tok2vec").begin_update(docs)
            backprop_tok2vec([self.model.ops.alloc2f(*t.shape) for t in tokvecs])
        if sgd is not None:
            self.finish_update(sgd)
        return losses

    def sequence_uncertainty(self, docs: Sequence[Doc]) -> List["Uncertainty"]:  # noqa: F821
        """Per doc, how unsure the CRF is (active learning, issue 19): the Viterbi path, its probability
        exp(score - log Z), least confidence 1 - p and the mean token entropy of the marginals
        (:mod:`spacy_mtlave.active.uncertainty`). ``docs`` must have been through the components before this one."""
        from ..active.uncertainty import tagger_uncertainty

        return tagger_uncertainty(self, docs)

    def score(self, examples: Iterable[Example], **kwargs) -> Dict:
        """The scorer's keys; a vertical-bound tagger scores its own vertical's examples, keys suffixed by its name."""
        if self.scorer is None:
            return {}
        suffix = self.name if self.vertical is not None else None
        return self.scorer(examples, vertical=self.vertical, key_suffix=suffix, **kwargs)
