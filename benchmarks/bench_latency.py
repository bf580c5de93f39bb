"""Latency of ``nlp(title)`` (p50 / p95 / p99 ms per title at batch 1) and words/s at batch 1, 64 and 256, for trained
ave_tagger pipelines and spaCy ``ner`` pipelines, side by side in one process.

Run (one torch / BLAS thread):
    OMP_NUM_THREADS=1 python benchmarks/bench_latency.py --system ours=/tmp/bench_ours/model-best \\
        --system ours_v2=/tmp/bench_ours_v2/model-best --system ours_rows=/tmp/bench_ours/model-best@rows \\
        --system ner_eff=/tmp/bench_ner_eff/model-best --system ner=/tmp/bench_ner/model-best --baseline ner_eff

``name=path@mode`` runs an ave_tagger pipeline with ``spacy_mtlave.ml.embed.ROW_CACHE = mode`` (``auto``, the
default: whole rows for ``WordCharEmbed.v2``, features for v1; ``features``; ``rows``; ``off``). Every pipeline first
annotates the ``--warm`` titles (default: the training titles, as a request handler would have seen its catalog), then
the rounds run: in each round every system (in a rotating order)
annotates every test title once with ``nlp(title)`` (each call timed: the latency percentiles pool all rounds), then
``nlp.pipe(texts, batch_size=B)`` over the test titles repeated to ``--n-texts`` for each larger batch size. Words are
spaCy tokens; tokenization is included for every system. Reported: percentiles over every timed call, words/s as the
median over rounds, and each system's words/s over the ``--baseline``'s. Prints Markdown.
"""
import argparse
import os
import statistics
import time
from typing import Dict, List, Tuple

import numpy
import spacy
import torch
from spacy.language import Language
from spacy.tokens import DocBin


def load_system(spec: str) -> Tuple[Language, str]:
    path, _, mode = spec.partition("@")
    return spacy.load(path), mode or "auto"


def set_mode(mode: str) -> None:
    from spacy_mtlave.ml import embed

    embed.ROW_CACHE = mode


def titles_of(path: str, vocab) -> List[str]:
    return [doc.text for doc in DocBin().from_disk(path).get_docs(vocab)]


def batch_one(nlp: Language, titles: List[str]) -> Tuple[List[float], int, float]:
    """(ms per call, words, seconds) of nlp(title) for each title."""
    ms, words = [], 0
    begin = time.perf_counter()
    for title in titles:
        start = time.perf_counter()
        doc = nlp(title)
        ms.append(1000 * (time.perf_counter() - start))
        words += len(doc)
    return ms, words, time.perf_counter() - begin


def batched(nlp: Language, texts: List[str], batch_size: int) -> Tuple[int, float]:
    begin = time.perf_counter()
    words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size))
    return words, time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", action="append", required=True, help="name=pipeline_dir[@row cache mode] (repeatable)")
    parser.add_argument("--baseline", default="ner_eff")
    parser.add_argument("--test", default="corpus/coffee/test.spacy")
    parser.add_argument("--warm", default="corpus/coffee/train.spacy", help="titles annotated once before timing ('' for none)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--n-texts", type=int, default=3000, help="texts per batched run (the test titles repeated)")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)

    specs = dict(item.split("=", 1) for item in args.system)
    if args.baseline not in specs:
        parser.error(f"--baseline {args.baseline!r} is not one of the --system names {list(specs)}")
    systems = {name: load_system(spec) for name, spec in specs.items()}
    names = list(systems)
    blank = spacy.blank("en")
    titles = titles_of(args.test, blank.vocab)
    warm = titles_of(args.warm, blank.vocab) if args.warm else []
    texts = (titles * (args.n_texts // len(titles) + 1))[: args.n_texts]
    for nlp, mode in systems.values():
        set_mode(mode)
        for title in warm + titles[:10]:
            nlp(title)
        list(nlp.pipe(texts[:300], batch_size=64))

    load_start = os.getloadavg()
    latencies: Dict[str, List[float]] = {n: [] for n in names}
    rates: Dict[Tuple[str, int], List[float]] = {}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            nlp, mode = systems[name]
            set_mode(mode)
            ms, words, seconds = batch_one(nlp, titles)
            latencies[name].extend(ms)
            rates.setdefault((name, 1), []).append(words / seconds)
            for batch_size in args.batch_sizes:
                words, seconds = batched(nlp, texts, batch_size)
                rates.setdefault((name, batch_size), []).append(words / seconds)
    load_end = os.getloadavg()

    sizes = [1] + args.batch_sizes
    wps = {key: statistics.median(v) for key, v in rates.items()}
    n_words = sum(len(blank.make_doc(t)) for t in titles)
    print(f"load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end ({os.cpu_count()} cores), "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, torch threads {torch.get_num_threads()}; "
          f"{len(titles)} test titles ({n_words / len(titles):.1f} words each), {args.rounds} interleaved rounds; "
          f"batched runs: {len(texts)} texts; warm-up: {len(warm)} titles\n")
    head = ["system", "p50 ms", "p95 ms", "p99 ms"] + [f"words/s batch {b}" for b in sizes] + [f"/ {args.baseline} batch {b}" for b in sizes]
    print("| " + " | ".join(head) + " |")
    print("| --- |" + " ---: |" * (len(head) - 1))
    for name in names:
        p50, p95, p99 = numpy.percentile(latencies[name], [50, 95, 99])
        cells = [name, f"{p50:.2f}", f"{p95:.2f}", f"{p99:.2f}"]
        cells += [f"{wps[(name, b)]:,.0f}" for b in sizes]
        cells += [f"{wps[(name, b)] / wps[(args.baseline, b)]:.2f}x" for b in sizes]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
