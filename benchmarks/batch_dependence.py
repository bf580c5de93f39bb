"""Where a title's confidences pick up differences that depend on its batch (issue 20): which matrix products give a row
that depends on the other rows, how far the char BiLSTM's vector of a word moves with its batch (torch, v1) or not
(numpy, ``WordCharEmbed.v2``), and how much of a confidence difference is float32 forward-backward rounding.

Run (one torch / BLAS thread):
    OMP_NUM_THREADS=1 python benchmarks/batch_dependence.py /tmp/bench_ours/model-best --test corpus/coffee/test.spacy

1. Matrix products: the largest |row computed with the other rows - the same row alone| for X [M, nI] @ W.T, for
   thinc's ``NumpyOps.gemm`` (blis), numpy's matmul (OpenBLAS) and torch's (MKL), for several M and the shapes of
   the Maxout layer (704 -> 384) and the char LSTM's recurrent step (32 -> 128).
2. Char vectors of the test titles' words: computed per title (batch 1), over the whole test set in one batch
   (batch 256), and each word alone, with torch's LSTM (v1) and with ``char_lstm_numpy`` (v2).
3. Confidences: the emissions of each title with its per-title char vectors (v1 batch 1) and with each word's vector
   computed alone (another batch layout), and the emissions of batch 1 against batch 256 (whole pipeline); then the
   marginals of the predicted tags from both emissions with the pipeline's float32 forward-backward and with a
   float64 one. float64 shows what the input difference itself does; float32 adds its own rounding, whose size is
   set by log Z (the ulp of alpha + beta).
"""
import argparse

import numpy
import spacy
import torch
from spacy.attrs import ORTH
from spacy.tokens import DocBin
from thinc.api import NumpyOps

from spacy_mtlave.ml import embed as E
from spacy_mtlave.ml.char_lstm_numpy import char_bilstm_predict
from spacy_mtlave.ml.crf_numpy import numpy_crf
from spacy_mtlave.ml.device import torch_module
from spacy_mtlave.ml.tagger_model import crf_module


def gemm_rows(ms=(1, 2, 3, 4, 8, 16, 64, 256)) -> None:
    ops = NumpyOps()
    rng = numpy.random.default_rng(0)
    products = {
        "thinc NumpyOps.gemm (blis)": lambda X, W: ops.gemm(X, W, trans2=True),
        "numpy matmul (OpenBLAS)": lambda X, W: X @ W.T,
        "torch matmul (MKL)": lambda X, W: (torch.from_numpy(X) @ torch.from_numpy(W).T).numpy(),
    }
    print("| product | shape | " + " | ".join(f"M={m}" for m in ms) + " |")
    print("| --- | --- |" + " ---: |" * len(ms))
    for n_in, n_out in [(704, 384), (32, 128)]:
        W = (rng.standard_normal((n_out, n_in)) * 0.05).astype("float32")
        X = rng.standard_normal((max(ms), n_in)).astype("float32")
        for name, f in products.items():
            alone = numpy.concatenate([f(X[i : i + 1], W) for i in range(max(ms))])
            cells = [f"{float(numpy.abs(f(X[:m], W) - alone[:m]).max()):.2g}" for m in ms]
            print(f"| {name} | [M, {n_in}] @ [{n_in}, {n_out}] | " + " | ".join(cells) + " |")


def marginals64(crf, emissions: numpy.ndarray) -> numpy.ndarray:
    """Forward-backward of one row [L, T] in float64 (log-sum-exp), -> marginals [L, T]."""
    T, start, end = (a.astype("float64") for a in (crf.transitions, crf.start, crf.end))
    em = emissions.astype("float64")
    lse = lambda z, axis: numpy.logaddexp.reduce(z, axis=axis)
    alphas, betas = numpy.empty_like(em), numpy.empty_like(em)
    alphas[0] = start + em[0]
    for i in range(1, len(em)):
        alphas[i] = lse(alphas[i - 1][:, None] + T, 0) + em[i]
    betas[-1] = end
    for i in range(len(em) - 2, -1, -1):
        betas[i] = lse(T + (betas[i + 1] + em[i + 1])[None, :], 1)
    scores = alphas + betas
    probs = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline")
    parser.add_argument("--test", default="corpus/coffee/test.spacy")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("## 1. Is a row of X @ W.T the same with other rows? max |in a batch of M - alone|\n")
    gemm_rows()

    nlp = spacy.load(args.pipeline)
    E.ROW_CACHE = "off"
    docs = [nlp.make_doc(d.text) for d in DocBin().from_disk(args.test).get_docs(nlp.vocab)]
    embed = nlp.get_pipe("tok2vec").model.layers[0]
    char_model = E._parts(embed)[1]
    module = torch_module(char_model.layers[0])
    strings, max_chars = nlp.vocab.strings, char_model.attrs["max_chars"]
    keys = [d.to_array(ORTH).tolist() for d in docs]
    all_keys = [k for ks in keys for k in ks]

    def torch_rows(ks):
        chars, lengths, rows = E._char_batch(strings, ks, max_chars)
        with torch.inference_mode():
            return module(torch.from_numpy(chars), torch.from_numpy(lengths), torch.from_numpy(rows)).numpy()

    def numpy_rows(ks):
        chars, lengths, rows = E._char_batch(strings, ks, max_chars)
        return char_bilstm_predict(NumpyOps(), module, chars, lengths)[rows]

    print(f"\n## 2. Char vectors of the {len(all_keys)} test tokens ({len(set(all_keys))} distinct words)\n")
    print("| char BiLSTM | per title vs whole test set: max diff | tokens that differ | per title vs word alone | whole set vs word alone |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, f in [("torch LSTM (v1)", torch_rows), ("char_lstm_numpy (v2)", numpy_rows)]:
        per_title = numpy.concatenate([f(ks) for ks in keys])
        whole = f(all_keys)
        alone = numpy.concatenate([f([k]) for k in all_keys])
        d = numpy.abs(per_title - whole).max(axis=1)
        print(f"| {name} | {d.max():.2g} | {int((d > 0).sum())} | {numpy.abs(per_title - alone).max():.2g} | "
              f"{numpy.abs(whole - alone).max():.2g} |")
    numpy_vs_torch = numpy.abs(numpy_rows(all_keys) - torch_rows(all_keys)).max()
    print(f"\nv2 (numpy) against v1 (torch) char vectors, whole test set: max diff {numpy_vs_torch:.2g}")

    print("\n## 3. Confidence differences of the predicted tags, float32 (pipeline) vs float64 forward-backward\n")
    tagger = nlp.get_pipe("ave_tagger")
    linear = tagger.model.get_ref("emitter").layers[0]
    tok2vec = nlp.get_pipe("tok2vec").model
    crf = numpy_crf(crf_module(tagger.model))
    encoder = tok2vec.layers[1]

    def emissions_from_rows(rows):
        return [linear.predict(encoder.predict([r])[0]) for r in rows]

    alone_rows = []
    for d, ks in zip(docs, keys):  # the embedding rows with each word's char vector computed alone
        concat = E._feature_rows(embed, nlp.vocab, numpy.ascontiguousarray(d.to_array(_columns(embed)), dtype="uint64"))
        concat[:, E._concat_slices(embed)[0]] = numpy.concatenate([torch_rows([k]) for k in ks])
        alone_rows.append(E._parts(embed)[3].predict(concat))
    batch_1 = [tagger.model.get_ref("emitter").predict(tok2vec.predict([d]))[0] for d in docs]
    batch_256 = tagger.model.get_ref("emitter").predict(tok2vec.predict(docs))
    cases = {"v1: char vectors per title vs each word alone (batch 1)": (batch_1, emissions_from_rows(alone_rows)),
             "v1: whole pipeline, batch 1 vs batch 256": (batch_1, batch_256)}
    print("| emissions A vs B | max emission diff | paths differ | max conf. diff, float32 FB | max conf. diff, float64 FB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    log_z = []
    for name, (A, B) in cases.items():
        d_em = d32 = d64 = 0.0
        n_paths = 0
        for a, b in zip(A, B):
            mask = numpy.ones((1, len(a)), dtype=bool)
            path = crf.decode(a[None], mask)[0]
            n_paths += path != crf.decode(b[None], mask)[0]
            idx = (numpy.arange(len(path)), path)
            d_em = max(d_em, float(numpy.abs(a - b).max()))
            d32 = max(d32, float(numpy.abs(crf.marginals(a[None], mask)[0][idx] - crf.marginals(b[None], mask)[0][idx]).max()))
            d64 = max(d64, float(numpy.abs(marginals64(crf, a)[idx] - marginals64(crf, b)[idx]).max()))
            log_z.append(float(numpy.logaddexp.reduce(marginals64_alpha_end(crf, a))))
        print(f"| {name} | {d_em:.2g} | {n_paths} | {d32:.2g} | {d64:.2g} |")
    own = max(float(numpy.abs(crf.marginals(a[None], numpy.ones((1, len(a)), bool))[0] - marginals64(crf, a)).max()) for a in batch_1)
    print(f"\nfloat32 forward-backward against float64 on the same emissions: max {own:.2g}; log Z {min(log_z):.0f} to "
          f"{max(log_z):.0f} (float32 spacing at {max(log_z):.0f}: {numpy.spacing(numpy.float32(max(log_z))):.2g})")


def marginals64_alpha_end(crf, emissions: numpy.ndarray) -> numpy.ndarray:
    """alpha_L + end in float64 (log Z = logsumexp of it)."""
    T = crf.transitions.astype("float64")
    alpha = crf.start.astype("float64") + emissions[0]
    for i in range(1, len(emissions)):
        alpha = numpy.logaddexp.reduce(alpha[:, None] + T, axis=0) + emissions[i]
    return alpha + crf.end


def _columns(embed):
    from spacy.attrs import LOWER, intify_attr

    extractor = embed.layers[0].layers[0].layers[0].layers[0]
    return [ORTH, LOWER] + [intify_attr(a) for a in extractor.attrs["columns"]]


if __name__ == "__main__":
    main()
