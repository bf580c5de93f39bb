"""Word representations: static vectors (looked up lower-cased) + hashed lexical features + a character BiLSTM.

``spacy_mtlave.WordCharEmbed.v1`` is the ``embed`` half of a ``spacy.Tok2Vec.v2``: docs -> one [n_tokens, width]
array per doc.
"""
from typing import List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.attrs import LOWER, ORTH
from spacy.ml.featureextractor import FeatureExtractor
from spacy.tokens import Doc
from spacy.util import registry
from spacy.vectors import Mode
from thinc.api import (
    ArgsKwargs,
    HashEmbed,
    Maxout,
    Model,
    PyTorchWrapper,
    chain,
    concatenate,
    glorot_uniform_init,
    list2ragged,
    ragged2list,
    with_array,
    xp2torch,
)
from thinc.types import Floats2d, Ragged

from .device import module_device

N_CHAR_IDS = 256  # 0 = padding, 1..127 ASCII, 128..255 hashed buckets for other code points


@registry.architectures("spacy_mtlave.WordCharEmbed.v1")
def build_word_char_embed(
    width: int,
    attrs: List[str],
    rows: List[int],
    include_static_vectors: bool,
    char_dim: int,
    char_width: int,
    max_chars: int,
) -> Model[List[Doc], List[Floats2d]]:
    """Concatenate hashed ``attrs`` embeddings (spaCy's NORM/PREFIX/SUFFIX/SHAPE features), the pipeline's static
    vectors keyed by the lower-cased word, and a character BiLSTM of ``char_width`` (both directions); mix them
    with a Maxout layer to ``width``.
    """
    if len(rows) != len(attrs):
        raise ValueError(f"WordCharEmbed: 'rows' has {len(rows)} entries but 'attrs' has {len(attrs)}")
    embeddings = [HashEmbed(width, n_rows, column=i, seed=8 + i, dropout=0.0) for i, n_rows in enumerate(rows)]
    parts: List[Model] = [
        chain(FeatureExtractor(attrs), list2ragged(), with_array(concatenate(*embeddings))),
        CharBiLSTMEmbed(char_dim, char_width, max_chars),
    ]
    concat_width = width * len(attrs) + char_width
    if include_static_vectors:
        parts.append(LowerStaticVectors(width))
        concat_width += width
    mixed = chain(
        concatenate(*parts),
        with_array(Maxout(width, concat_width, nP=3, dropout=0.0, normalize=True)),
        ragged2list(),
    )
    return Model("word_char_embed", _skip_empty_forward, init=_init_inner, layers=[mixed], dims={"nO": width})


def _init_inner(model: Model, X=None, Y=None) -> None:
    model.layers[0].initialize(X=X, Y=Y)


def _skip_empty_forward(model: Model, docs: List[Doc], is_train: bool):
    """A batch without tokens (empty texts) skips the layers and returns [0, width] arrays."""
    if sum(len(doc) for doc in docs) == 0:
        return [model.ops.alloc2f(0, model.get_dim("nO")) for _ in docs], lambda dY: []
    return model.layers[0](docs, is_train)


def LowerStaticVectors(nO: int) -> Model[List[Doc], Ragged]:
    """The vocab's vectors looked up by ``LOWER`` (GloVe 6B is lower-cased), projected to nO: docs -> Ragged [n, nO].

    spaCy's own StaticVectors keys by the table's ``attr``, which spaCy 3.8 does not persist, so capitalised title
    words would all miss. Missing words get a zero vector.
    """
    return Model("lower_static_vectors", _static_vectors_forward, init=_static_vectors_init, params={"W": None}, dims={"nO": nO, "nM": None})


def _static_vectors_init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    nM = model.get_dim("nM") if model.has_dim("nM") else None
    if X is not None and len(X):
        nM = X[0].vocab.vectors.shape[1]
    if not nM:
        raise ValueError(
            "WordCharEmbed: include_static_vectors is true but the pipeline has no vectors; "
            "set [initialize] vectors (python -m spacy_mtlave vectors builds a GloVe table)"
        )
    model.set_dim("nM", nM)
    model.set_param("W", glorot_uniform_init(model.ops, (model.get_dim("nO"), nM)))


def _vector_rows(docs: Sequence[Doc]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    vectors = docs[0].vocab.vectors
    keys = numpy.concatenate([doc.to_array(LOWER) for doc in docs]).astype("uint64")
    if vectors.mode == Mode.floret:
        return vectors.get_batch(keys), numpy.zeros(len(keys), dtype=bool)
    rows = vectors.find(keys=keys)
    data = vectors.data[rows]
    return data, rows < 0


def _static_vectors_forward(model: Model, docs: List[Doc], is_train: bool):
    lengths = model.ops.asarray1i([len(doc) for doc in docs])
    nO = model.get_dim("nO")
    W = model.get_param("W")
    if int(lengths.sum()) == 0:
        return Ragged(model.ops.alloc2f(0, nO), lengths), lambda dY: []
    V, missing = _vector_rows(docs)
    V = model.ops.asarray2f(V)
    V[model.ops.asarray(missing)] = 0
    Y = model.ops.gemm(V, W, trans2=True)

    def backprop(dY: Ragged) -> List[Doc]:
        model.inc_grad("W", model.ops.gemm(dY.data, V, trans1=True))
        return []

    return Ragged(Y, lengths), backprop


class CharBiLSTM(torch.nn.Module):
    """Lample et al.'s character BiLSTM: a word's characters -> final forward and backward states.

    forward(chars [U, C] long, lengths [U] long, token_rows [N] long) -> [N, 2 * hidden] (U unique words, N tokens).
    """

    def __init__(self, char_dim: int, hidden: int):
        super().__init__()
        self.embed = torch.nn.Embedding(N_CHAR_IDS, char_dim, padding_idx=0)
        self.lstm = torch.nn.LSTM(char_dim, hidden, batch_first=True, bidirectional=True)

    def forward(self, chars: torch.Tensor, lengths: torch.Tensor, token_rows: torch.Tensor) -> torch.Tensor:
        packed = torch.nn.utils.rnn.pack_padded_sequence(self.embed(chars), lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        words = torch.cat([h_n[0], h_n[1]], dim=-1)
        return words[token_rows]


def char_ids(text: str, max_chars: int) -> List[int]:
    """Character ids of a word, keeping the first and last ``max_chars // 2`` characters of long words."""
    if len(text) > max_chars:
        half = max_chars // 2
        text = text[:half] + text[-(max_chars - half):]
    return [ord(c) if 0 < ord(c) < 128 else 128 + ord(c) % 128 for c in text] or [N_CHAR_IDS - 1]


def CharBiLSTMEmbed(char_dim: int, width: int, max_chars: int) -> Model[List[Doc], Ragged]:
    """docs -> Ragged [n_tokens, width]; each distinct word of the batch runs through the char BiLSTM once."""
    if width % 2:
        raise ValueError(f"WordCharEmbed: char_width must be even (both directions), got {width}")
    lstm = PyTorchWrapper(CharBiLSTM(char_dim, width // 2), convert_inputs=_char_inputs)
    return Model("char_bilstm_embed", _char_forward, layers=[lstm], attrs={"max_chars": max_chars}, dims={"nO": width})


def _char_inputs(model: Model, X: Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray], is_train: bool):
    chars, lengths, rows = X
    device = module_device(model)  # lengths stay on the CPU (pack_padded_sequence)
    return ArgsKwargs(args=(xp2torch(chars, device=device), torch.from_numpy(lengths), xp2torch(rows, device=device)), kwargs={}), lambda d: []


def _char_forward(model: Model, docs: List[Doc], is_train: bool):
    lengths = model.ops.asarray1i([len(doc) for doc in docs])
    width = model.get_dim("nO")
    if int(lengths.sum()) == 0:
        return Ragged(model.ops.alloc2f(0, width), lengths), lambda dY: []
    max_chars = model.attrs["max_chars"]
    strings = docs[0].vocab.strings
    vocab: dict = {}  # ORTH key -> row, in order of first occurrence
    keys = numpy.concatenate([doc.to_array(ORTH) for doc in docs]).tolist()
    token_rows = numpy.asarray([vocab.setdefault(key, len(vocab)) for key in keys], dtype="int64")
    words = [char_ids(strings[key], max_chars) for key in vocab]
    word_lengths = numpy.asarray([len(w) for w in words], dtype="int64")
    chars = numpy.zeros((len(words), int(word_lengths.max())), dtype="int64")
    for i, ids in enumerate(words):
        chars[i, : len(ids)] = ids
    Y, backprop_lstm = model.layers[0]((chars, word_lengths, token_rows), is_train)

    def backprop(dY: Ragged) -> List[Doc]:
        backprop_lstm(dY.data)
        return []

    return Ragged(Y, lengths), backprop
