"""Word representations: static vectors (looked up lower-cased) + hashed lexical features + a character BiLSTM.

``spacy_mtlave.WordCharEmbed.v1`` is the ``embed`` half of a ``spacy.Tok2Vec.v2``: docs -> one [n_tokens, width]
array per doc. ``spacy_mtlave.WordCharEmbed.v2``: the same layers and parameters (a v1 pipeline's weights load into
it), whose prediction on the CPU computes each token's row independently of the other tokens of the batch, bit for
bit, so whole rows are cached exactly (``ROW_CACHE = "auto"``).
"""
import threading
import weakref
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.attrs import LOWER, ORTH, intify_attr
from spacy.ml.featureextractor import FeatureExtractor
from spacy.tokens import Doc
from spacy.util import registry
from spacy.vectors import Mode
from thinc.api import (
    ArgsKwargs,
    HashEmbed,
    Maxout,
    Model,
    NumpyOps,
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

from .char_lstm_numpy import char_bilstm_predict
from .device import module_device, torch_module

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
    return _word_char_embed(width, attrs, rows, include_static_vectors, char_dim, char_width, max_chars, False)


@registry.architectures("spacy_mtlave.WordCharEmbed.v2")
def build_word_char_embed_v2(
    width: int,
    attrs: List[str],
    rows: List[int],
    include_static_vectors: bool,
    char_dim: int,
    char_width: int,
    max_chars: int,
) -> Model[List[Doc], List[Floats2d]]:
    """``WordCharEmbed.v1`` (same layers, parameters and training), except that prediction on the CPU runs the char
    BiLSTM in numpy (``char_lstm_numpy``), where a word's vector does not depend on the other words of the batch: every
    part of a token's row (hashed features, vectors, char BiLSTM, Maxout + LayerNorm in blis) is then a function of
    the token alone, and the default ``ROW_CACHE = "auto"`` caches whole rows, bit for bit what the uncached path gives.
    """
    return _word_char_embed(width, attrs, rows, include_static_vectors, char_dim, char_width, max_chars, True)


def _word_char_embed(
    width: int,
    attrs: List[str],
    rows: List[int],
    include_static_vectors: bool,
    char_dim: int,
    char_width: int,
    max_chars: int,
    batch_independent: bool,
) -> Model[List[Doc], List[Floats2d]]:
    if len(rows) != len(attrs):
        raise ValueError(f"WordCharEmbed: 'rows' has {len(rows)} entries but 'attrs' has {len(attrs)}")
    embeddings = [HashEmbed(width, n_rows, column=i, seed=8 + i, dropout=0.0) for i, n_rows in enumerate(rows)]
    parts: List[Model] = [
        chain(FeatureExtractor(attrs), list2ragged(), with_array(concatenate(*embeddings))),
        CharBiLSTMEmbed(char_dim, char_width, max_chars, batch_independent),
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
    """A batch without tokens (empty texts) skips the layers and returns [0, width] arrays. Prediction on the CPU
    takes the direct path of ``_predict_rows`` (row cache, no thinc wrappers); a training pass empties the cache."""
    if is_train:
        model.attrs.pop(ROW_CACHE_ATTR, None)
    if sum(len(doc) for doc in docs) == 0:
        return [model.ops.alloc2f(0, model.get_dim("nO")) for _ in docs], lambda dY: []
    if not is_train and ROW_CACHE in ("auto", "features", "rows") and isinstance(model.ops, NumpyOps):
        return _predict_rows(model, docs), lambda dY: []
    return model.layers[0](docs, is_train)


# Prediction on the CPU: the same layers called directly on arrays (the HashEmbed concatenation, the char BiLSTM's
# torch module, the vector projection, Maxout + LayerNorm), with a cache of what depends on a token alone.
# ROW_CACHE = "features": cache each token's hashed-feature and vector rows (row-wise arithmetic, so the cached rows
# are the very numbers the thinc path computes); the char BiLSTM still runs on the batch's distinct words and Maxout
# on the batch, as before: outputs equal the thinc path bit for bit.
# ROW_CACHE = "rows": cache each token's finished embedding row (the char BiLSTM and Maxout too), so a token seen
# before costs a dict lookup. Exact for WordCharEmbed.v2 (every part of a row is computed row by row). For v1 it is
# faster but not exact: torch's batched LSTM can round the last bit of a word's char vector differently with other
# words in its batch, so a row cached from another batch can differ from the uncached one in the last bit, and
# confidences by a few 1e-6 (as they already did between batch sizes). Predictions were equal on every test title of
# the corpus (docs/performance.md).
# ROW_CACHE = "auto" (default): "rows" for WordCharEmbed.v2, "features" for v1, i.e. the fastest exact mode.
# ROW_CACHE = "off": the thinc path.
# A model's cache is emptied by any training pass (parameters only change after one) and whenever a parameter
# array, a torch tensor or the vectors table is replaced (``initialize``, ``from_bytes``/``from_disk``,
# ``use_params``); after editing parameters in place by hand, call ``clear_row_cache``.
ROW_CACHE = "auto"
ROW_CACHE_SIZE = 20_000  # tokens per model (2.8 KB each in "features" mode); the cache starts over when full
# A model's cache lives in its own attrs, so it goes when the model goes (a module-level registry kept every
# pipeline ever used for prediction alive, vectors table included). thinc's serialization skips it (not msgpack-able)
# and a copied model starts without one.
ROW_CACHE_ATTR = "row_cache"
_LIVE_CACHES: "weakref.WeakSet[_RowCache]" = weakref.WeakSet()  # for clear_row_cache() without a model


class _RowCache:
    """Rows of the tokens seen so far: ``index`` (token key -> row of ``table``). In "features" mode a row is laid out
    as the Maxout layer's input (hashed features, char BiLSTM, vectors) with the char columns left zero."""

    def __init__(self, signature: Tuple[tuple, tuple], nodes: Tuple[list, list], columns: List[int], mode: str, row_width: int) -> None:
        self.signature = signature
        self.nodes = nodes  # ([(node, param name)], [PyTorchWrapper layers]) of the model, walked once
        self.columns = columns  # ORTH, LOWER, then the hashed attrs
        self.mode = mode
        self.index: Dict[bytes, int] = {}
        self.table = numpy.zeros((256, row_width), dtype="float32")
        self.char_ids: Dict[int, List[int]] = {}  # ORTH key -> the char BiLSTM's input ids
        self.lock = threading.Lock()  # one thread at a time fills and reads the table

    def add(self, keys: List[bytes], rows: numpy.ndarray) -> None:
        n = len(self.index)
        if n + len(keys) > len(self.table):
            grown = numpy.zeros((max(2 * len(self.table), n + len(keys)), self.table.shape[1]), dtype="float32")
            grown[:n] = self.table[:n]
            self.table = grown
        self.table[n : n + len(keys)] = rows
        self.index.update(zip(keys, range(n, n + len(keys))))

    def clear(self) -> None:
        self.index.clear()
        self.char_ids.clear()

    def __deepcopy__(self, memo) -> None:  # Model.copy() deep-copies attrs: the copy starts without a cache
        return None


def row_cache_of(model: Model) -> Optional[_RowCache]:
    """The prediction row cache of a WordCharEmbed ``model`` (None before its first prediction or after a training
    pass)."""
    return model.attrs.get(ROW_CACHE_ATTR)


def clear_row_cache(model: Optional[Model] = None) -> None:
    """Empty the prediction row cache of the WordCharEmbed layers under ``model`` (e.g. a tok2vec), or all caches."""
    if model is None:
        for cache in list(_LIVE_CACHES):
            cache.signature = ((), ())  # never equal to a model's: rebuilt at the next prediction
            cache.clear()
        return
    for node in model.walk():
        node.attrs.pop(ROW_CACHE_ATTR, None)


def _parts(model: Model) -> Tuple[Model, Model, Optional[Model], Model]:
    """(hashed features on a uint64 [n, k] array, char_bilstm_embed, lower_static_vectors or None, Maxout mix on an
    array) of a WordCharEmbed model."""
    mixed = model.layers[0]
    concat, mix = mixed.layers[0], mixed.layers[1]
    parts = concat.layers
    static = parts[2] if len(parts) > 2 else None
    return parts[0].layers[-1].layers[0], parts[1], static, mix.layers[0]


def _param_nodes(model: Model) -> Tuple[list, list]:
    """([(node, param name)], [PyTorchWrapper layers]) under ``model``."""
    return [(node, name) for node in model.walk() for name in node.param_names], [node for node in model.walk() if node.shims]


def _signature(model: Model, vocab, nodes: Tuple[list, list]) -> Tuple[tuple, tuple]:
    """(objects, values) that change when a parameter of ``model`` or the vectors table is replaced: every parameter
    array, torch module and the vectors table and its data (held here, so their ids cannot be reused while the cache
    lives; compared by identity), and each torch tensor's address and in-place version counter."""
    params, wrappers = nodes
    objects: list = [node.get_param(name) if node.has_param(name) else None for node, name in params]
    values: list = []
    for wrapper in wrappers:
        module = torch_module(wrapper)
        objects.append(module)
        values.extend((p.data_ptr(), p._version) for p in module.parameters())
    vectors = vocab.vectors
    objects += [vectors, vectors.data]
    values.append(vectors.shape)
    return tuple(objects), tuple(values)


def _same_signature(a: Tuple[tuple, tuple], b: Tuple[tuple, tuple]) -> bool:
    return len(a[0]) == len(b[0]) and all(x is y for x, y in zip(a[0], b[0])) and a[1] == b[1]


def row_cache_mode(model: Model) -> str:
    """The cache mode ``ROW_CACHE`` means for a WordCharEmbed ``model``: "auto" is "rows" when its char BiLSTM's
    prediction is batch-independent (v2), else "features"."""
    if ROW_CACHE != "auto":
        return ROW_CACHE
    return "rows" if _parts(model)[1].attrs.get("predict_batch_independent") else "features"


def _predict_rows(model: Model, docs: List[Doc]) -> List[numpy.ndarray]:
    """Each doc's embedding rows [n_i, width], computing only what the cache does not hold."""
    vocab = docs[0].vocab
    cache = row_cache_of(model)
    nodes = cache.nodes if cache is not None else _param_nodes(model)
    signature = _signature(model, vocab, nodes)
    mode = row_cache_mode(model)
    if cache is None or not _same_signature(cache.signature, signature) or cache.mode != mode:
        extractor = model.layers[0].layers[0].layers[0].layers[0]  # mixed > concatenate > feature chain > extractor
        columns = [ORTH, LOWER] + [intify_attr(a) for a in extractor.attrs["columns"]]
        row_width = model.get_dim("nO") if mode == "rows" else _concat_slices(model)[1]
        cache = model.attrs[ROW_CACHE_ATTR] = _RowCache(signature, nodes, columns, mode, row_width)
        _LIVE_CACHES.add(cache)
    arrays = [doc.to_array(cache.columns) for doc in docs]
    table = arrays[0] if len(arrays) == 1 else numpy.concatenate(arrays)
    table = numpy.ascontiguousarray(table, dtype="uint64")
    raw, width = table.tobytes(), 8 * table.shape[1]
    keys = [raw[i : i + width] for i in range(0, len(raw), width)]  # one token's (ORTH, LOWER, attrs...) as bytes
    with cache.lock:
        index = cache.index
        missing = list(dict.fromkeys(k for k in keys if k not in index))
        if missing:
            if len(index) + len(missing) > ROW_CACHE_SIZE:  # start over, with this batch's tokens
                cache.clear()
                missing = list(dict.fromkeys(keys))
            unseen = numpy.frombuffer(b"".join(missing), dtype="uint64").reshape(len(missing), table.shape[1])
            computed = _feature_rows(model, vocab, unseen)
            if cache.mode == "rows":
                computed = _mix_rows(model, vocab, computed, unseen[:, 0].tolist(), cache.char_ids)
            cache.add(missing, computed)
        out = cache.table[numpy.fromiter((index[k] for k in keys), dtype="int64", count=len(keys))]
    if cache.mode == "features":
        out = _mix_rows(model, vocab, out, table[:, 0].tolist(), cache.char_ids)
    if len(docs) == 1:
        return [out]
    starts = numpy.cumsum([0] + [len(a) for a in arrays])
    return [out[starts[i] : starts[i + 1]] for i in range(len(docs))]


def _concat_slices(model: Model) -> Tuple[slice, int]:
    """Where the char BiLSTM's columns sit in the Maxout layer's input (hashed features, chars, vectors: every
    HashEmbed and the vector projection have the embedding's width), and that input's width."""
    features, char_model, static, _ = _parts(model)
    width = model.get_dim("nO")
    n_hashed = len(features.layers) * width
    n_chars = char_model.get_dim("nO")
    return slice(n_hashed, n_hashed + n_chars), n_hashed + n_chars + (width if static is not None else 0)


def _feature_rows(model: Model, vocab, table: numpy.ndarray) -> numpy.ndarray:
    """The Maxout layer's input rows [m, width] of tokens given by their (ORTH, LOWER, hashed attrs...) rows, with
    zeros in the char BiLSTM's columns: the HashEmbed concatenation and the vector projection of the thinc path,
    called directly."""
    features, _, static, _ = _parts(model)
    chars, width = _concat_slices(model)
    out = numpy.zeros((len(table), width), dtype="float32")
    out[:, : chars.start] = features.predict(numpy.ascontiguousarray(table[:, 2:]))
    if static is not None:
        out[:, chars.stop :] = _static_rows(static, vocab.vectors, table[:, 1])
    return out


def _mix_rows(model: Model, vocab, concat: numpy.ndarray, orth_keys: List[int], memo: Optional[dict] = None) -> numpy.ndarray:
    """Embedding rows from ``_feature_rows`` (filled in place with the char BiLSTM run on the distinct words of
    ``orth_keys``, one per row), through Maxout + LayerNorm."""
    _, char_model, _, mix = _parts(model)
    concat[:, _concat_slices(model)[0]] = _char_rows(char_model, vocab.strings, orth_keys, memo)
    return mix.predict(concat)


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
    keys = numpy.concatenate([doc.to_array(LOWER) for doc in docs]).astype("uint64")
    return _lower_vector_rows(docs[0].vocab.vectors, keys)


def _lower_vector_rows(vectors, keys: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Rows of the vectors table for LOWER keys [n] uint64, and which keys are missing."""
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


def _static_rows(model: Model, vectors, keys: numpy.ndarray) -> numpy.ndarray:
    """``_static_vectors_forward`` for LOWER keys [n] (prediction): [n, nO]."""
    V, missing = _lower_vector_rows(vectors, keys.astype("uint64"))
    V = model.ops.asarray2f(V)
    V[model.ops.asarray(missing)] = 0
    return model.ops.gemm(V, model.get_param("W"), trans2=True)


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


def CharBiLSTMEmbed(char_dim: int, width: int, max_chars: int, batch_independent: bool = False) -> Model[List[Doc], Ragged]:
    """docs -> Ragged [n_tokens, width]; each distinct word of the batch runs through the char BiLSTM once.

    ``batch_independent``: prediction on the CPU uses ``char_bilstm_predict`` (a word's vector does not depend on the
    batch) instead of torch's LSTM; training always runs torch's LSTM. The function is held in the attr
    ``predict_batch_independent``, which thinc cannot serialize, so saved weights do not carry it from one version to
    the other."""
    if width % 2:
        raise ValueError(f"WordCharEmbed: char_width must be even (both directions), got {width}")
    lstm = PyTorchWrapper(CharBiLSTM(char_dim, width // 2), convert_inputs=_char_inputs)
    attrs = {"max_chars": max_chars}
    if batch_independent:
        attrs["predict_batch_independent"] = char_bilstm_predict
    return Model("char_bilstm_embed", _char_forward, layers=[lstm], attrs=attrs, dims={"nO": width})


def _char_inputs(model: Model, X: Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray], is_train: bool):
    chars, lengths, rows = X
    device = module_device(model)  # lengths stay on the CPU (pack_padded_sequence)
    return ArgsKwargs(args=(xp2torch(chars, device=device), torch.from_numpy(lengths), xp2torch(rows, device=device)), kwargs={}), lambda d: []


def _char_batch(strings, keys: List[int], max_chars: int, memo: Optional[dict] = None) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """ORTH keys [n] -> (char ids [U, C], word lengths [U], token rows [n]) of the U distinct words, in order of
    first occurrence. ``memo``: ORTH key -> char ids, kept between calls by the prediction path."""
    vocab: dict = {}  # ORTH key -> row
    token_rows = numpy.asarray([vocab.setdefault(key, len(vocab)) for key in keys], dtype="int64")
    if memo is None:
        words = [char_ids(strings[key], max_chars) for key in vocab]
    else:
        words = [memo[key] if key in memo else memo.setdefault(key, char_ids(strings[key], max_chars)) for key in vocab]
    word_lengths = numpy.asarray([len(w) for w in words], dtype="int64")
    chars = numpy.zeros((len(words), int(word_lengths.max())), dtype="int64")
    for i, ids in enumerate(words):
        chars[i, : len(ids)] = ids
    return chars, word_lengths, token_rows


def _char_rows(model: Model, strings, keys: List[int], memo: Optional[dict] = None) -> numpy.ndarray:
    """The char BiLSTM's rows [n, width] for ORTH keys (prediction on the CPU): the torch module called directly, or
    the batch-independent numpy LSTM (v2)."""
    chars, word_lengths, token_rows = _char_batch(strings, keys, model.attrs["max_chars"], memo)
    module = torch_module(model.layers[0])
    batch_independent = model.attrs.get("predict_batch_independent")
    if batch_independent is not None:
        return batch_independent(model.ops, module, chars, word_lengths)[token_rows]
    with torch.inference_mode():
        Y = module(torch.from_numpy(chars), torch.from_numpy(word_lengths), torch.from_numpy(token_rows))
    return Y.numpy()


def _char_forward(model: Model, docs: List[Doc], is_train: bool):
    lengths = model.ops.asarray1i([len(doc) for doc in docs])
    width = model.get_dim("nO")
    if int(lengths.sum()) == 0:
        return Ragged(model.ops.alloc2f(0, width), lengths), lambda dY: []
    keys = numpy.concatenate([doc.to_array(ORTH) for doc in docs]).tolist()
    if not is_train and model.attrs.get("predict_batch_independent") is not None and isinstance(model.ops, NumpyOps):
        return Ragged(_char_rows(model, docs[0].vocab.strings, keys), lengths), lambda dY: []
    chars, word_lengths, token_rows = _char_batch(docs[0].vocab.strings, keys, model.attrs["max_chars"])
    Y, backprop_lstm = model.layers[0]((chars, word_lengths, token_rows), is_train)

    def backprop(dY: Ragged) -> List[Doc]:
        backprop_lstm(dY.data)
        return []

    return Ragged(Y, lengths), backprop
