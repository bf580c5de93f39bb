"""Where the time of one ``nlp(title)`` call goes, per stage (tokenizer, feature hashing, character BiLSTM, packing,
word BiLSTM, emission layer, Viterbi, marginals, span building, thinc/spaCy/torch call overhead).

Run (one torch / BLAS thread):
    OMP_NUM_THREADS=1 python benchmarks/profile_call.py /tmp/bench_ours/model-best --test corpus/coffee/test.spacy

Each stage is a function or layer of the pipeline wrapped by a timer; a stage's time is *exclusive* (the time of the
stages it calls is subtracted), so the rows add up to the wrapped calls' time and the rest of the call is the
``overhead`` row (spaCy's ``Language.__call__``, thinc's chain/with_array/ragged conversions, PyTorchWrapper
conversions, torch module dispatch). Hooks whose target does not exist in the installed code are skipped, so the
script profiles the code before and after a change alike. The timers add about 1 us per wrapped call; the unwrapped
time per call is printed as well. ``--warm`` titles (default: the training titles) are run first, as a request
handler would have seen them. Prints Markdown.
"""
import argparse
import importlib
import os
import statistics
import time
from typing import Callable, Dict, List, Optional

import spacy
import torch
from spacy.tokens import DocBin

TIMES: Dict[str, float] = {}
STACK: List[List[float]] = []  # per active stage: [time spent in nested stages]


def timed(stage: str, func: Callable) -> Callable:
    def wrapper(*args, **kwargs):
        STACK.append([0.0])
        begin = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            total = time.perf_counter() - begin
            nested = STACK.pop()[0]
            TIMES[stage] = TIMES.get(stage, 0.0) + total - nested
            if STACK:
                STACK[-1][0] += total

    wrapper.__wrapped_stage__ = stage
    return wrapper


def hook_attr(owner, name: str, stage: str) -> bool:
    func = getattr(owner, name, None)
    if func is None or hasattr(func, "__wrapped_stage__"):
        return False
    setattr(owner, name, timed(stage, func))
    return True


def hook_layers(model, stages: Dict[str, str]) -> None:
    """Wrap the forward function of every thinc layer whose name starts with a key of ``stages``."""
    for layer in model.walk():
        for prefix, stage in stages.items():
            if layer.name.startswith(prefix) and not hasattr(layer._func, "__wrapped_stage__"):
                layer._func = timed(stage, layer._func)
                break


def module(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def install_hooks(nlp) -> None:
    nlp.tokenizer = timed("tokenizer", nlp.tokenizer)
    layer_stages = {
        "extract_features": "feature hashing (NORM/PREFIX/SUFFIX/SHAPE HashEmbed)",
        "lower_static_vectors": "static vectors (GloVe lookup + projection)",
        "char_bilstm_embed": "char BiLSTM: char ids, unique words",
        "with_array(maxout": "Maxout + LayerNorm mix",
        "maxout>>layernorm": "Maxout + LayerNorm mix",
        "ints-getitem>>hashembed|": "feature hashing (NORM/PREFIX/SUFFIX/SHAPE HashEmbed)",
        "list2padded": "packing (list2padded, padded2list, pack/pad_packed_sequence)",
        "padded2list": "packing (list2padded, padded2list, pack/pad_packed_sequence)",
        "with_array(linear)": "emission layer (linear)",
    }
    for _, pipe in nlp.pipeline:
        if hasattr(pipe, "model"):
            hook_layers(pipe.model, layer_stages)
            for layer in pipe.model.walk():
                for shim in layer.shims:
                    torch_model = getattr(shim, "_model", None)
                    kind = type(torch_model).__name__
                    if kind == "CharBiLSTM":
                        torch_model.forward = timed("char BiLSTM: torch LSTM (embedding + LSTM)", torch_model.forward)
                    elif kind == "BiLSTM":
                        torch_model.forward = timed("word BiLSTM (torch LSTM)", torch_model.forward)
    rnn = torch.nn.utils.rnn
    for name in ("pack_padded_sequence", "pad_packed_sequence"):
        hook_attr(rnn, name, "packing (list2padded, padded2list, pack/pad_packed_sequence)")
    crf = module("spacy_mtlave.ml.crf")
    crf_numpy = module("spacy_mtlave.ml.crf_numpy")
    tagger = module("spacy_mtlave.pipeline.tagger")
    embed = module("spacy_mtlave.ml.embed")
    encoder = module("spacy_mtlave.ml.encoder")
    if crf is not None:
        hook_attr(crf.CRF, "to_numpy", "CRF parameter snapshot (to_numpy)")
        hook_attr(crf.CRF, "decode", "Viterbi")
        hook_attr(crf.CRF, "marginals", "forward-backward marginals")
    if crf_numpy is not None:
        hook_attr(crf_numpy.NumpyCRF, "decode", "Viterbi")
        hook_attr(crf_numpy.NumpyCRF, "marginals", "forward-backward marginals")
        hook_attr(crf_numpy.NumpyCRF, "path_marginals", "forward-backward marginals")
        hook_attr(crf_numpy, "_viterbi", "Viterbi")
    if tagger is not None:
        hook_attr(tagger, "pad_scores", "CRF padding and length buckets")
        hook_attr(tagger, "numpy_crf", "CRF parameter snapshot (to_numpy)")
        hook_attr(tagger.AVETagger, "set_annotations", "span building (set_annotations)")
    # the functions of the prediction fast path (absent before it existed)
    if crf_numpy is not None:
        hook_attr(crf_numpy, "_viterbi_one", "Viterbi")
    if embed is not None:
        hook_attr(embed, "_predict_rows", "embedding row cache (token keys, lookup, stacking)")
        hook_attr(embed, "_static_rows", "static vectors (GloVe lookup + projection)")
        hook_attr(embed, "_char_rows", "char BiLSTM: char ids, unique words")
    if encoder is not None:
        hook_attr(encoder, "_single_doc_lstm", "word BiLSTM (torch LSTM)")
    tagger_model = module("spacy_mtlave.ml.tagger_model")
    if tagger_model is not None:
        hook_attr(tagger_model, "emission_scores", "emission layer (linear)")


def load_titles(path: str, vocab) -> List[str]:
    return [doc.text for doc in DocBin().from_disk(path).get_docs(vocab)]


def profile(nlp, titles: List[str], repeats: int) -> Dict[str, float]:
    """Mean ms per call of each stage and of the whole call (``total``) over repeats x titles."""
    TIMES.clear()
    begin = time.perf_counter()
    for _ in range(repeats):
        for title in titles:
            nlp(title)
    total = time.perf_counter() - begin
    n = repeats * len(titles)
    out = {stage: 1000 * t / n for stage, t in TIMES.items()}
    out["total"] = 1000 * total / n
    return out


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--test", default="corpus/coffee/test.spacy")
    parser.add_argument("--warm", default="corpus/coffee/train.spacy", help="titles run once before timing ('' for none)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--label", default="")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    nlp = spacy.load(args.model)
    titles = load_titles(args.test, nlp.vocab)
    warm = load_titles(args.warm, nlp.vocab) if args.warm else []
    for title in warm + titles[:10]:
        nlp(title)
    words = sum(len(nlp.make_doc(t)) for t in titles) / len(titles)
    plain = []
    for _ in range(5):
        begin = time.perf_counter()
        for title in titles:
            nlp(title)
        plain.append(1000 * (time.perf_counter() - begin) / len(titles))
    install_hooks(nlp)
    runs = [profile(nlp, titles, 1) for _ in range(args.repeats)]
    stages = sorted({s for r in runs for s in r if s != "total"}, key=lambda s: -statistics.median(r.get(s, 0.0) for r in runs))
    med = {s: statistics.median(r.get(s, 0.0) for r in runs) for s in stages}
    total = statistics.median(r["total"] for r in runs)
    overhead = total - sum(med.values())
    print(f"{args.label} {args.model}: {len(titles)} titles ({words:.1f} words each), median of {args.repeats} passes; "
          f"load average {os.getloadavg()[0]:.2f}; unwrapped {statistics.median(plain):.3f} ms per call, "
          f"wrapped {total:.3f} ms")
    print("\n| stage | ms per call | share |\n| --- | ---: | ---: |")
    for stage in stages:
        print(f"| {stage} | {med[stage]:.3f} | {100 * med[stage] / total:.0f}% |")
    print(f"| thinc / spaCy / torch call overhead (the rest) | {overhead:.3f} | {100 * overhead / total:.0f}% |")
    print(f"| **total (wrapped)** | **{total:.3f}** | 100% |")


if __name__ == "__main__":
    main()
