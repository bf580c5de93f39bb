"""The contextual encoder: a (multi-layer) BiLSTM over each doc's token vectors, ``spacy_mtlave.BiLSTMEncoder.v1``."""
from typing import List

import numpy
import torch
from spacy.util import registry
from thinc.api import (
    ArgsKwargs,
    Model,
    PyTorchWrapper,
    chain,
    list2padded,
    padded2list,
    torch2xp,
    xp2torch,
)
from thinc.layers.chain import forward as chain_forward
from thinc.types import Floats2d, Padded

from .device import module_device, torch_module


@registry.architectures("spacy_mtlave.BiLSTMEncoder.v1")
def build_bilstm_encoder(width: int, hidden_width: int, depth: int, dropout: float) -> Model[List[Floats2d], List[Floats2d]]:
    """[n_tokens, width] per doc -> [n_tokens, hidden_width] per doc (hidden_width // 2 units in each direction).

    The paper uses one layer of 700 units; padding never leaks into the backward direction (packed sequences),
    so a doc's output does not depend on the other docs in its batch.
    """
    if hidden_width % 2:
        raise ValueError(f"BiLSTMEncoder: hidden_width must be even (two directions), got {hidden_width}")
    lstm = PyTorchWrapper(
        BiLSTM(width, hidden_width // 2, depth, dropout), convert_inputs=_padded_inputs, convert_outputs=_padded_outputs
    )
    model = chain(list2padded(), lstm, padded2list())
    model.set_dim("nO", hidden_width)
    model._func = _encoder_forward  # the same chain, with a direct path for one doc at prediction (no layer added)
    return model


def _encoder_forward(model: Model, Xs: List[Floats2d], is_train: bool):
    """The chain's forward; predicting one doc on the CPU calls the torch LSTM directly on it (no padding, no packed
    sequence, no thinc conversions): a packed batch of one sequence gives the same numbers, bit for bit."""
    if not is_train and len(Xs) == 1 and isinstance(Xs[0], numpy.ndarray) and len(Xs[0]):
        return [_single_doc_lstm(torch_module(model.layers[1]), Xs[0])], lambda dYs: []
    return chain_forward(model, Xs, is_train)


def _single_doc_lstm(module: "BiLSTM", X: numpy.ndarray) -> numpy.ndarray:
    """One doc [n, nI] -> [n, 2 * hidden] through ``module``'s LSTM in evaluation mode (dropout off)."""
    lstm = module.lstm
    training = lstm.training
    lstm.training = False  # the flag only (what ``eval()`` sets), without walking the module tree
    try:
        with torch.inference_mode():
            Y, _ = lstm(torch.from_numpy(numpy.ascontiguousarray(X, dtype="float32"))[:, None, :])
    finally:
        lstm.training = training
    return Y[:, 0].numpy()


class BiLSTM(torch.nn.Module):
    """forward(X [L, B, nI] time-major, lengths [B] sorted descending) -> [L, B, 2 * hidden], zeros on padding."""

    def __init__(self, nI: int, hidden: int, depth: int, dropout: float):
        super().__init__()
        self.lstm = torch.nn.LSTM(nI, hidden, depth, bidirectional=True, dropout=dropout if depth > 1 else 0.0)
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if X.shape[0] == 0:  # only empty docs
            return X.new_zeros((0, X.shape[1], 2 * self.lstm.hidden_size))
        # an empty doc is packed as length 1; its one padded output row is dropped by padded2list
        packed = torch.nn.utils.rnn.pack_padded_sequence(self.dropout(X), lengths.clamp(min=1), enforce_sorted=True)
        Y, _ = self.lstm(packed)
        Y, _ = torch.nn.utils.rnn.pad_packed_sequence(Y, total_length=X.shape[0])
        return self.dropout(Y)


def _padded_inputs(model: Model, Xp: Padded, is_train: bool):
    X = xp2torch(Xp.data, requires_grad=is_train, device=module_device(model))
    lengths = torch.as_tensor(model.ops.to_numpy(Xp.lengths), dtype=torch.int64)  # on the CPU (pack_padded_sequence)

    def reverse(dX: ArgsKwargs) -> Padded:
        return Padded(torch2xp(dX.args[0]), Xp.size_at_t, Xp.lengths, Xp.indices)

    return ArgsKwargs(args=(X, lengths), kwargs={}), reverse


def _padded_outputs(model: Model, inputs_outputs, is_train: bool):
    Xp, Ytorch = inputs_outputs

    def reverse(dYp: Padded) -> ArgsKwargs:
        return ArgsKwargs(args=(Ytorch,), kwargs={"grad_tensors": xp2torch(dYp.data)})

    return Padded(torch2xp(Ytorch), Xp.size_at_t, Xp.lengths, Xp.indices), reverse
