"""The character BiLSTM's prediction in numpy, batch-independent (``spacy_mtlave.WordCharEmbed.v2``).

torch's LSTM rounds a word's states differently depending on the other words of its batch (MKL picks another matrix
product kernel when 1-3 rows share a time step), so the same word gets char vectors that differ in the last bit from
batch to batch. Here the only matrix product is thinc's ``ops.gemm`` (blis: a row of X @ W.T is the same whatever the
other rows are) and everything else is element-wise or a gather, so a word's vector is a function of the word alone:
bit for bit the same alone, in any batch and in any order. The same function as torch's LSTM (gates i, f, g, o; the
final states of both directions), rounded differently (within ~1e-6 of it).
"""
import weakref

import numpy
import torch
from thinc.api import Ops

_WEIGHTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # module -> (parameter copies, step weights)


def char_bilstm_predict(ops: Ops, module: torch.nn.Module, chars: numpy.ndarray, lengths: numpy.ndarray) -> numpy.ndarray:
    """The final states of ``module`` (a ``CharBiLSTM``: ``embed``, one-layer bidirectional ``lstm``) for U words:
    char ids [U, C] int (padded), lengths [U] int (at least 1) -> [U, 2 * hidden] float32 (forward, backward)."""
    table, W = step_weights(ops, module)
    H = module.lstm.hidden_size
    order = numpy.argsort(-lengths, kind="stable")  # longest first: the words still running are a prefix
    ids, lens = chars[order], lengths[order]
    n_steps = int(lens[0])
    steps = numpy.arange(n_steps)
    forward_ids = numpy.ascontiguousarray(ids[:, :n_steps].T)  # [n_steps, U]: the char read at step t
    backward_ids = numpy.take_along_axis(ids, numpy.clip(lens[:, None] - 1 - steps, 0, None), axis=1).T.copy()
    active = (lens[:, None] > steps).sum(axis=0)
    h = numpy.zeros((len(lens), 2 * H), dtype="float32")
    c = numpy.zeros((len(lens), 2 * H), dtype="float32")
    with numpy.errstate(over="ignore"):  # exp(-x) = inf for very negative gates: sigmoid 0, as it should
        for t in range(n_steps):
            n = int(active[t])
            gates = ops.gemm(h[:n], W, trans2=True)
            gates += table[0][forward_ids[t, :n]]
            gates += table[1][backward_ids[t, :n]]
            sig = 1.0 / (1.0 + numpy.exp(-gates[:, : 6 * H]))  # i, f, o of both directions
            c[:n] = sig[:, 2 * H : 4 * H] * c[:n] + sig[:, : 2 * H] * numpy.tanh(gates[:, 6 * H :])
            h[:n] = sig[:, 4 * H :] * numpy.tanh(c[:n])
    out = numpy.empty_like(h)
    out[order] = h
    return out


def step_weights(ops: Ops, module: torch.nn.Module):
    """``_step_weights``, kept while ``module``'s parameters stay equal (compared by value each call, ~25k floats:
    thinc's optimizers write into the tensors' memory, so neither identity nor torch's version counter would do)."""
    params = tuple(p.detach() for p in module.parameters())
    cached = _WEIGHTS.get(module)
    if cached is not None:
        copies, weights = cached
        if len(copies) == len(params) and all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(copies, params)):
            return weights
    weights = _step_weights(ops, module)
    _WEIGHTS[module] = (tuple(p.clone() for p in params), weights)
    return weights


def _step_weights(ops: Ops, module: torch.nn.Module):
    """((forward table, backward table) [N_CHAR_IDS, 8H] each, W [8H, 2H]): both directions in one step. Gate columns:
    i, f, o, g, each [forward H | backward H]; a table holds embed @ W_ih.T + b_ih + b_hh of its direction (zeros in
    the other's columns), W the two directions' W_hh block-diagonally, so a step is gates = inputs + [h_f | h_b] @ W.T."""
    lstm = module.lstm
    H = lstm.hidden_size
    with torch.no_grad():
        E = module.embed.weight.detach().cpu().numpy()
        directions = [
            [getattr(lstm, f"{name}_l0{suffix}").detach().cpu().numpy() for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            for suffix in ("", "_reverse")
        ]
    tables = numpy.zeros((2, len(E), 8 * H), dtype="float32")
    W = numpy.zeros((8 * H, 2 * H), dtype="float32")
    for d, (W_ih, W_hh, b_ih, b_hh) in enumerate(directions):
        projected = ops.gemm(numpy.ascontiguousarray(E), numpy.ascontiguousarray(W_ih), trans2=True) + (b_ih + b_hh)
        for k, gate in enumerate((0, 1, 3, 2)):  # torch's row blocks: i, f, g, o
            col = (2 * k + d) * H
            tables[d, :, col : col + H] = projected[:, gate * H : (gate + 1) * H]
            W[col : col + H, d * H : (d + 1) * H] = W_hh[gate * H : (gate + 1) * H]
    return tables, W
