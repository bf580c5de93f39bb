"""Seconds per update step of a `train-group` pipeline as the number of verticals N grows.

    OMP_NUM_THREADS=1 python benchmarks/bench_group_step.py --corpus corpus --vectors vectors/glove-6b-50d --n 2 4 10

For each N, the first N OA-Mine verticals (sorted by name) are put into the config `train-group` derives from
configs/pair.cfg (all N(N-1)/2 pairs coupled, paper's coupling) and initialised with spaCy's `init_nlp` (timed: it
builds every pair's shortlist). One step is `nlp.update(batch)` on a batch of `spacy_mtlave.group_batcher.v1` (30 + 30
examples of one pair of verticals). Every round runs one step of each N in rotating order, so all see the same machine
load; prints median seconds per step and the median per-round ratio to the smallest N as Markdown.
"""
import argparse
import os
import random
import statistics
import time
from pathlib import Path
from typing import Dict, List

import torch
from spacy.training.initialize import init_nlp
from spacy.util import fix_random_seed, load_config, load_config_from_str

from spacy_mtlave.training.batchers import create_group_batcher
from spacy_mtlave.training.corpus import corpus_paths, create_vertical_corpus
from spacy_mtlave.training.group_config import group_config
from spacy_mtlave.training.partner_verticals import corpus_folders
from spacy_mtlave.training.train import CONFIG_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--vectors", default="vectors/glove-6b-50d")
    parser.add_argument("--n", type=int, nargs="+", default=[2, 4, 10])
    parser.add_argument("--size", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    folders = corpus_folders(args.corpus)
    template = load_config(CONFIG_DIR / "pair.cfg", interpolate=False)
    nlps, steps, init_seconds, n_pairs = {}, {}, {}, {}
    for n in args.n:
        chosen = dict(sorted(folders.items())[:n])
        config = group_config(template, {v: corpus_paths(d) for v, d in chosen.items()})
        fix_random_seed(0)
        begin = time.perf_counter()
        nlp = init_nlp(load_config_from_str(config.to_str(), overrides={"paths.vectors": args.vectors}, interpolate=False))
        init_seconds[n] = time.perf_counter() - begin
        n_pairs[n] = len(nlp.get_pipe("coupling").states)
        examples = list(create_vertical_corpus({v: str(d / "train.spacy") for v, d in chosen.items()})(nlp))
        random.seed(0)
        batches = [b for b in create_group_batcher(args.size)(examples) if len({eg.reference._.vertical for eg in b}) == 2]
        optimizer = nlp.create_optimizer()
        dropout = nlp.config["training"]["dropout"]
        nlps[n] = nlp
        steps[n] = (batches, optimizer, dropout)
    times: Dict[int, List[float]] = {n: [] for n in args.n}
    order = list(args.n)
    for r in range(args.warmup + args.repeats):
        for n in order[r % len(order):] + order[: r % len(order)]:
            batches, optimizer, dropout = steps[n]
            batch = batches[r % len(batches)]
            begin = time.perf_counter()
            nlps[n].update(batch, drop=dropout, sgd=optimizer)
            if r >= args.warmup:
                times[n].append(time.perf_counter() - begin)
    base = args.n[0]
    print(f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores), torch threads {torch.get_num_threads()}, "
          f"batches of {args.size} + {args.size}, {args.repeats} interleaved rounds after {args.warmup} warm-up rounds\n")
    print(f"| N verticals | coupled pairs | init_nlp s (incl. shortlists) | median s/step | vs N={base} (median of per-round ratios) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n in args.n:
        ratio = statistics.median(t / b for t, b in zip(times[n], times[base]))
        print(f"| {n} | {n_pairs[n]} | {init_seconds[n]:.1f} | {statistics.median(times[n]):.3f} | {ratio:.2f}x |")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
