"""Train the benchmark grid behind docs/results.md: for every vertical pair of BENCHMARK.md and every seed, the two
single-task taggers, the pair with hard sharing only (--coupling none), with full coupling, and with full coupling plus a k-gram
prior on the label attention (full_kgram; full_kgram_attr also leaves O contexts out of L), the pair over the
all-MiniLM-L6-v2 encoder (full_trf, configs/pair_trf.cfg), all verticals of the pairs jointly (group_full,
group_none: train-group into OUT/group/seed<N>/<coupling>; group_full_p2: coupling each vertical only with its 2 best
suggested partners), and spaCy's `ner` (configs/baseline_ner.cfg) per vertical. Runs `python -m spacy_mtlave ...` in --jobs parallel processes (one torch
thread each), skips runs whose run.json exists, and prints the `report` command for the finished runs.

    python benchmarks/run_results.py --corpus corpus --out training/results --seeds 0 1 2 --jobs 2
    python benchmarks/run_results.py --systems full --pair-list "Coffee+Shoes" "Tea+Vitamin"   # other pairs
"""
import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PAIRS = [("Coffee", "Tea"), ("Laundry Detergent", "Sunscreen"), ("Conditioner", "Vitamin"), ("Shoes", "Toothbrush"), ("Breakfast Cereal", "Safety Mask")]
SYSTEMS = ("full", "none", "single", "ner", "full_kgram", "full_kgram_attr", "full_trf", "group_full", "group_none", "group_full_p2")
# extra config overrides of a system (see docs/results.md: label attention with a k-gram name prior)
VARIANTS = {
    "full_kgram": ("full", ["--components.coupling.model.label_init_std", "1.0"]),
    "full_kgram_attr": ("full", ["--components.coupling.model.label_init_std", "1.0", "--components.coupling.skip_outside", "true"]),
    "full_trf": ("full", ["--config", "configs/pair_trf.cfg"]),
}


VERTICALS = ["Breakfast Cereal", "Coffee", "Conditioner", "Laundry Detergent", "Safety Mask", "Shoes", "Sunscreen", "Tea", "Toothbrush", "Vitamin"]


def mean_sd_text(values, digits: int = 1) -> str:
    """"m +- sd" (sample sd) of a list of numbers, the value alone for one, "-" for none."""
    from statistics import mean, stdev

    if not values:
        return "-"
    return f"{mean(values):.{digits}f} +- {stdev(values):.{digits}f}" if len(values) > 1 else f"{values[0]:.{digits}f}"


def slug(name: str) -> str:
    return name.lower().replace(" ", "_")


def jobs(corpus: Path, out: Path, seeds, systems, vectors, pairs):
    """(output dir, command) per run, seed by seed, so that an interrupted grid still holds complete comparisons."""
    vec = ["--vectors", str(vectors)] if vectors else []
    runs = []
    verticals = sorted({v for pair in pairs for v in pair})
    for seed in seeds:
        for system in (s for s in systems if s.startswith("group_")):
            coupling, _, partners = system[len("group_"):].partition("_p")
            target = out / "group" / f"seed{seed}" / system[len("group_"):]
            extra = ["--partners", partners] if partners else []
            runs.append((target, ["train-group", *(str(corpus / slug(v)) for v in verticals), str(target), "--coupling", coupling, "--seed", str(seed), *vec, *extra]))
        for v1, v2 in pairs:
            for system in systems:
                base = out / f"{slug(v1)}+{slug(v2)}" / f"seed{seed}"
                if system in ("full", "none", *VARIANTS):
                    coupling, extra = VARIANTS.get(system, (system, []))
                    runs.append((base / system, ["train-pair", str(corpus / slug(v1)), str(corpus / slug(v2)), str(base / system), "--coupling", coupling, "--seed", str(seed), *vec, *extra]))
                elif system in ("single", "ner"):
                    for v in (v1, v2):
                        cfg = ["--config", "configs/baseline_ner.cfg"] if system == "ner" else []
                        runs.append((base / f"{system}_{slug(v)}", ["train", str(corpus / slug(v)), str(base / f"{system}_{slug(v)}"), "--seed", str(seed), *cfg, *vec]))
    return runs


def run(job):
    target, args = job
    if (target / "run.json").exists():
        return target, 0, 0.0
    target.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(str(target) + ".log", "w") as log:
        code = subprocess.call([sys.executable, "-m", "spacy_mtlave", *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    return target, code, time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--out", type=Path, default=Path("training/results"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--pairs", type=int, nargs="+", default=list(range(len(PAIRS))), help="indices into the pair list")
    parser.add_argument("--pair-list", nargs="+", default=None, help="other pairs instead, as 'Vertical A+Vertical B'")
    parser.add_argument("--vectors", type=Path, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    a = parser.parse_args()
    pairs = [tuple(p.split("+")) for p in a.pair_list] if a.pair_list else [PAIRS[i] for i in a.pairs]
    todo = jobs(a.corpus, a.out, a.seeds, a.systems, a.vectors, pairs)
    done = []
    with ThreadPoolExecutor(a.jobs) as pool:
        for i, (target, code, seconds) in enumerate(pool.map(run, todo), start=1):
            status = "ok" if code == 0 else f"FAILED (exit {code}, see {target}.log)"
            print(f"[{i}/{len(todo)}] {target} {status} {seconds:.0f}s", flush=True)
            if code == 0:
                done.append(str(target))
    print("python -m spacy_mtlave report " + " ".join(done) + " --output docs/results")


if __name__ == "__main__":
    main()
