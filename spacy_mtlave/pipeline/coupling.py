"""The ``ave_coupling`` component: adds the paper's coupling loss (weight * TCE) between vertical-bound ``ave_tagger``
heads that share one tok2vec, inside spaCy's own update loop. It listens to the shared tok2vec like the heads do,
so it reuses the batch's encoder pass; placed before the heads, its gradient to their emission layers is applied by
their own optimizer step in the same update as their CRF losses."""
import itertools
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer

from ..ml.coupling_loss import CouplingLoss, PairwiseCouplingLoss
from ..ml.device import replace_module, torch_module
from ..vertical import get_vertical
from .pair_state import PairState
from .serialize import SizedFromCfg

MODES = ("none", "cce", "lce", "full")


DEFAULT_AVE_COUPLING_MODEL = """
[model]
@architectures = "spacy_mtlave.CouplingModel.v3"
k = 3
n_buckets = 4096
label_dim = 32
label_init_std = 0.1
score = "emission"

[model.tok2vec]
@architectures = "spacy.Tok2VecListener.v1"
width = 256
upstream = "*"
"""
DEFAULT_COUPLING_MODEL = Config().from_str(DEFAULT_AVE_COUPLING_MODEL)["model"]


@Language.factory(
    "ave_coupling",
    default_config={
        "model": DEFAULT_COUPLING_MODEL,
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
        self._states: Dict[str, PairState] = {}
        self._pending: Optional[Tuple[List, List[Example]]] = None

    @property
    def grouped(self) -> bool:
        return bool(self.model.attrs.get("grouped"))

    @property
    def settings(self) -> Dict:
        """The architecture's pairing ("drawn" or "all"), reduction ("sum" or "mean") and score, and the
        component's sampling settings: what :class:`PairState` is given."""
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
        return torch_module(self.model.get_ref("loss"))

    @property
    def states(self) -> Dict[str, "PairState"]:
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
        pair_ids = [tuple(p) for p in self.cfg.get("pair_ids", [(0, 1)])]
        self._states = PairState.build_all(self.name, self.cfg, pair_ids, self.settings["pairing"] == "all", self.grouped, taggers, examples)

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
        (see :meth:`PairState.usage`)."""
        return {" + ".join(sorted(state.verticals)): state.usage() for state in self._states.values()}

    def attention_by_tags(self) -> List[Dict]:
        """Per coupled pair of verticals: mean attention per (tag of v1, tag of v2) over all of L, both directions,
        context and label terms."""
        self._prepare_pending()
        if not self._states:
            raise ValueError(f"{self.name}: attention by tags needs the training state (initialize or prepare first)")
        return [state.attention_by_tags(self.pair_module(key), self.tag_lists()) for key, state in self._states.items()]

    def pair_module(self, key: str) -> CouplingLoss:
        """The CouplingLoss of the coupled pair ``key`` (``"i-j"``)."""
        return self.module.pairs[key] if self.grouped else self.module

