"""Seconds per update step: single-task pipelines vs the joint pair pipeline (full coupling, and coupling "none").

Run (one torch / BLAS thread):
    OMP_NUM_THREADS=1 python benchmarks/bench_train_step.py --corpus1 corpus/coffee --corpus2 corpus/tea \
        --vectors vectors/glove-6b-50d [--size 30 --repeats 15] [--pair-config pair_trf.cfg]

Builds four pipelines with spaCy's `init_nlp` from the shipped configs (training dropout as configured):
configs/single.cfg on each corpus, and configs/pair.cfg with `components.coupling.mode` "full" and "none". One step
is `nlp.update(batch, sgd=optimizer)`: --size training examples of one vertical for a single-task pipeline, --size
of each vertical (what `spacy_mtlave.vertical_batcher.v1` yields) for a pair pipeline; with full coupling the step
also draws --size pairs of the shortlist L per direction among the batch's contexts. Every round runs each system
once on the same examples (round r uses batch r of each vertical, cycling), in a rotating order, so all systems
see the same machine load. Prints the median seconds per step and the per-round ratio
pair / (single D1 + single D2) (median over rounds) as Markdown.
"""
import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch
from spacy.language import Language
from spacy.training import Corpus, Example
from spacy.training.initialize import init_nlp
from spacy.util import fix_random_seed, load_config

from spacy_mtlave.training.corpus import corpus_vertical, create_vertical_corpus
from spacy_mtlave.training.train import CONFIG_DIR


def build(config: str, overrides: Dict[str, object]) -> Language:
    fix_random_seed(0)
    return init_nlp(load_config(CONFIG_DIR / config, overrides=overrides, interpolate=False))


def batches(examples: List[Example], size: int) -> List[List[Example]]:
    return [examples[i : i + size] for i in range(0, len(examples) - size + 1, size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus1", type=Path, default=Path("corpus/coffee"))
    parser.add_argument("--corpus2", type=Path, default=Path("corpus/tea"))
    parser.add_argument("--vectors", default="vectors/glove-6b-50d")
    parser.add_argument("--size", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--pair-config", action="append", default=[], help="time this pair config (full coupling) as well, e.g. pair_trf.cfg")
    args = parser.parse_args()
    torch.set_num_threads(1)

    corpora = [args.corpus1, args.corpus2]
    verticals = [corpus_vertical(c / "train.spacy") for c in corpora]
    single = {
        f"single {v}": build("single.cfg", {"paths.train": str(c / "train.spacy"), "paths.dev": str(c / "dev.spacy"), "paths.vectors": args.vectors})
        for v, c in zip(verticals, corpora)
    }
    pair_settings: Dict[str, object] = {"paths.vectors": args.vectors}
    for i, (v, c) in enumerate(zip(verticals, corpora), start=1):
        pair_settings.update({f"paths.train{i}": str(c / "train.spacy"), f"paths.dev{i}": str(c / "dev.spacy"), f"components.tagger_v{i}.vertical": v})
    pair = {f"pair {mode}": build("pair.cfg", dict(pair_settings, **{"components.coupling.mode": mode})) for mode in ("full", "none")}
    pair.update({f"pair full ({config})": build(config, pair_settings) for config in args.pair_config})
    nlps = {**single, **pair}
    optimizers = {name: nlp.create_optimizer() for name, nlp in nlps.items()}
    dropout = next(iter(nlps.values())).config["training"]["dropout"]

    per_vertical = []
    for v, c in zip(verticals, corpora):
        examples = list(Corpus(str(c / "train.spacy"))(single[f"single {v}"]))
        per_vertical.append(batches(examples, args.size))
    joint_examples = {name: list(create_vertical_corpus({"v1": str(corpora[0] / "train.spacy"), "v2": str(corpora[1] / "train.spacy")})(nlp)) for name, nlp in pair.items()}
    joint_batches = {}
    for name, examples in joint_examples.items():
        by_vertical = [batches([eg for eg in examples if eg.reference._.vertical == v], args.size) for v in verticals]
        joint_batches[name] = [b1 + b2 for b1, b2 in zip(*by_vertical)]
    n_rounds = min(len(b) for b in per_vertical + list(joint_batches.values()))

    def step(name: str, r: int) -> Callable[[], None]:
        if name in single:
            batch = per_vertical[verticals.index(name[len("single "):])][r % n_rounds]
        else:
            batch = joint_batches[name][r % n_rounds]
        return lambda: nlps[name].update(batch, drop=dropout, sgd=optimizers[name])

    names = list(nlps)
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(args.warmup + args.repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            run = step(name, r)
            begin = time.perf_counter()
            run()
            if r >= args.warmup:
                times[name].append(time.perf_counter() - begin)

    print(f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"torch threads {torch.get_num_threads()}, batches of {args.size} per vertical, {args.repeats} interleaved rounds "
          f"after {args.warmup} warm-up rounds\n")
    both = [a + b for a, b in zip(times[names[0]], times[names[1]])]
    print("| step | median s/step | vs single D1 + single D2 (median of per-round ratios) | vs pair full |")
    print("| --- | ---: | ---: | ---: |")
    for name in names:
        ratio = statistics.median(t / s for t, s in zip(times[name], both))
        to_pair = statistics.median(t / s for t, s in zip(times[name], times["pair full"]))
        docs = f"{args.size}" if name in single else f"{args.size}+{args.size}"
        print(f"| {name} ({docs} docs) | {statistics.median(times[name]):.3f} | {ratio:.2f}x | {to_pair:.2f}x |")
    print(f"| single D1 + single D2 | {statistics.median(both):.3f} | 1.00x | |")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
