"""Value-aware emissions (issue 15): ``spacy_mtlave.BiLSTMCRFTagger.v2`` adds to v1's emission scores a learned score
for every token that a *known value* covers, the values being the attribute values of the tagger's own training
docs (a dictionary built at ``initialize``, saved with the model).

- ``value_matches``: docs -> per doc a [n_tokens, n_tags] 0/1 array: a phrase (lower-cased tokens, at most
  ``max_tokens``) that is a known value of attribute x sets ``B-x`` on its first token and ``I-x`` on the rest;
  ``O`` is never set. In training each match is dropped with probability ``dropout``: on its own training docs every
  gold value is in the dictionary, on new text only the values seen before are, so the tagger must not learn to
  trust the dictionary alone.
- the v2 tagger: emission = v1's ``Linear(tok2vec)`` + ``Linear(matches)`` (the ``value_emitter`` reference); the
  coupling loss still compares v1's ``emitter`` part (the encoder's scores)."""
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy import util
from spacy.tokens import Doc
from thinc.api import Linear, Model, PyTorchWrapper, with_array
from thinc.types import Floats2d

from .crf import CRF
from .tagger_model import _crf_inputs, _tagger_init, set_n_tags

KEY_SEPARATOR = "\x1f"


def value_key(words: Sequence[str]) -> str:
    """Dictionary key of a phrase: its lower-cased tokens."""
    return KEY_SEPARATOR.join(w.lower() for w in words)


def build_value_matches(max_tokens: int = 6, dropout: float = 0.5) -> Model[List[Doc], List[Floats2d]]:
    """docs -> [n_tokens, n_tags] 0/1 match features per doc (see the module docstring). The dictionary
    (``attrs["values"]``: key -> attribute labels) and the tag names (``attrs["tags"]``) are set by
    :func:`set_known_values`."""
    return Model("value_matches", _matches_forward, attrs={"values": {}, "tags": [], "max_tokens": max_tokens, "dropout": dropout})


def set_known_values(model: Model, values: Dict[str, Iterable[Sequence[str]]], tags: Sequence[str]) -> int:
    """Store the known values ({label: phrases as token lists}) in a v2 tagger's ``values`` layer; returns how many
    distinct phrases it holds. Labels not among ``tags`` are left out."""
    layer = model.get_ref("values")
    known: Dict[str, List[str]] = {}
    for label, phrases in values.items():
        if f"B-{label}" not in tags:
            continue
        for phrase in phrases:
            if 0 < len(phrase) <= layer.attrs["max_tokens"]:
                labels = known.setdefault(value_key(phrase), [])
                if label not in labels:
                    labels.append(label)
    layer.attrs["values"] = known
    layer.attrs["tags"] = list(tags)
    return len(known)


def _matches(layer: Model, doc: Doc, drop) -> Floats2d:
    tags = layer.attrs["tags"]
    index = {tag: i for i, tag in enumerate(tags)}
    known = layer.attrs["values"]
    out = numpy.zeros((len(doc), len(tags)), dtype="float32")
    if not known:
        return out
    words = [t.lower_ for t in doc]
    longest = layer.attrs["max_tokens"]
    for start in range(len(words)):
        for end in range(start + 1, min(len(words), start + longest) + 1):
            labels = known.get(KEY_SEPARATOR.join(words[start:end]))
            if not labels:
                continue
            for label in labels:
                if drop is not None and drop.random_sample() < layer.attrs["dropout"]:
                    continue
                out[start, index[f"B-{label}"]] = 1.0
                out[start + 1 : end, index[f"I-{label}"]] = 1.0
    return out


def _matches_forward(model: Model, docs: List[Doc], is_train: bool):
    # numpy's global generator: seeded by spaCy's fix_random_seed, so a training run is reproducible
    rng = numpy.random if is_train and model.attrs["dropout"] > 0 else None
    features = [model.ops.asarray2f(_matches(model, doc, rng)) for doc in docs]
    return features, lambda d_features: []


@util.registry.architectures("spacy_mtlave.BiLSTMCRFTagger.v2")
def build_value_aware_tagger(
    tok2vec: Model[List[Doc], List[Floats2d]], nO: Optional[int] = None, max_value_tokens: int = 6, value_dropout: float = 0.5
) -> Model[List[Doc], List[Floats2d]]:
    """As ``spacy_mtlave.BiLSTMCRFTagger.v1``, plus a learned emission score for the tokens that known values of
    the tagger's training docs cover (``max_value_tokens``: longest value matched; ``value_dropout``: share of
    matches dropped in training)."""
    emitter = with_array(Linear(nO=nO))
    values = build_value_matches(max_value_tokens, value_dropout)
    value_emitter = with_array(Linear(nO=nO, nI=nO))
    crf = PyTorchWrapper(CRF(nO or 1), convert_inputs=_crf_inputs)
    return Model(
        "value_aware_crf_tagger",
        _value_tagger_forward,
        init=_value_tagger_init,
        layers=[tok2vec, emitter, crf, values, value_emitter],
        refs={"tok2vec": tok2vec, "emitter": emitter, "crf": crf, "values": values, "value_emitter": value_emitter},
        dims={"nO": nO},
        attrs={"resize_output": set_n_tags},
    )


def _value_tagger_init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    _tagger_init(model, X, Y)
    n_tags = model.get_dim("nO")
    linear = model.get_ref("value_emitter").layers[0]
    linear.set_dim("nI", n_tags, force=True)
    linear.set_dim("nO", n_tags, force=True)
    model.get_ref("value_emitter").initialize(X=[numpy.zeros((1, n_tags), dtype="float32")])
    if len(model.get_ref("values").attrs["tags"]) != n_tags:  # no dictionary yet: all-zero features of the right width
        model.get_ref("values").attrs["tags"] = [""] * n_tags


def _value_tagger_forward(model: Model, docs: List[Doc], is_train: bool):
    tokvecs, backprop_tok2vec = model.get_ref("tok2vec")(docs, is_train)
    scores, backprop_emitter = model.get_ref("emitter")(tokvecs, is_train)
    matches, _ = model.get_ref("values")(docs, is_train)
    value_scores, backprop_values = model.get_ref("value_emitter")(matches, is_train)
    summed = [s + v for s, v in zip(scores, value_scores)]

    def backprop(d_scores: List[Floats2d]) -> List[Doc]:
        backprop_values(d_scores)
        return backprop_tok2vec(backprop_emitter(d_scores))

    return summed, backprop


def known_values(spans: Iterable[Tuple[str, Sequence[str]]]) -> Dict[str, List[List[str]]]:
    """{label: distinct phrases} from (label, token texts) pairs."""
    out: Dict[str, List[List[str]]] = {}
    seen = set()
    for label, words in spans:
        key = (label, value_key(words))
        if key not in seen:
            seen.add(key)
            out.setdefault(label, []).append(list(words))
    return out
