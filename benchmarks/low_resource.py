"""The paper's low-resource setting on the 5 benchmark pairs: one vertical of each pair keeps 20%, 50% or 100% of its
training titles (a fixed sample, ``subsample --seed 0``; dev and test untouched), its partner keeps 100%, and three
systems are trained per seed: single-task, hard sharing (``train-pair --coupling none``) and the coupling with the
setting chosen on dev (``--setting`` of benchmarks/coupling_sweep.py, default: its best coupled setting). Every run's
verticals are then scored once on their test split; tables (Markdown, JSON) and a PNG of macro-F1 and rare-tag F1
against the training fraction.

    python benchmarks/low_resource.py --corpus corpus --out training/low_resource --seeds 0 1 2 --jobs 2 \\
        --output docs/results/low_resource
"""
import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import mean, pstdev
from typing import Dict, List, Optional, Tuple

import srsly

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coupling_sweep import SETTINGS  # noqa: E402
from run_results import PAIRS, run, slug  # noqa: E402

SYSTEMS = ("single", "hard sharing", "coupling")
METRICS = (("macro_f1", "macro-F1"), ("ents_f", "span-F1"), ("rare_tag_f1", "rare-tag F1"))


def winner(sweep_json: Path) -> str:
    """The best coupled setting of a finished sweep (``coupling_sweep.py --output``)."""
    if not sweep_json.is_file():
        raise SystemExit(f"error: {sweep_json}: no sweep results (run benchmarks/coupling_sweep.py first, or pass --setting)")
    ranked = [name for name in srsly.read_json(sweep_json)["ranked"] if SETTINGS[name][0] != "none"]
    if not ranked:
        raise SystemExit(f"error: {sweep_json}: the sweep has no coupled setting")
    return ranked[0]


def corpora(corpus: Path, out: Path, fraction: float, reduced: str) -> Path:
    """The reduced vertical's corpus folder at ``fraction`` (made once with ``subsample``)."""
    if fraction == 1.0:
        return corpus / slug(reduced)
    from spacy_mtlave.training.subsample import subsample_corpus

    target = out / "corpus" / f"f{fraction:g}" / slug(reduced)
    if not (target / "train.spacy").is_file():
        subsample_corpus(corpus / slug(reduced), target, fraction, seed=0)
    return target


def run_dir(out: Path, pair: Tuple[str, str], fraction: float, seed: int, system: str) -> Path:
    return out / f"{slug(pair[0])}+{slug(pair[1])}" / f"f{fraction:g}" / f"seed{seed}" / system.replace(" ", "_")


def plan(corpus: Path, out: Path, fractions: List[float], seeds: List[int], setting: str, vectors: Optional[Path]):
    """(output dir, command) per run; single-task runs train the reduced vertical (both verticals at 100%)."""
    vec = ["--vectors", str(vectors)] if vectors else []
    coupled = SETTINGS[setting][1]
    runs = []
    for seed in seeds:
        for fraction in fractions:
            for pair in PAIRS:
                reduced, partner = pair
                small = corpora(corpus, out, fraction, reduced)
                big = corpus / slug(partner)
                base = ["--seed", str(seed), *vec]
                for vertical, folder in ((reduced, small), (partner, big))[: 2 if fraction == 1.0 else 1]:
                    runs.append((run_dir(out, pair, fraction, seed, f"single_{slug(vertical)}"), ["train", str(folder), str(run_dir(out, pair, fraction, seed, f"single_{slug(vertical)}")), *base]))
                runs.append((run_dir(out, pair, fraction, seed, "hard sharing"), ["train-pair", str(small), str(big), str(run_dir(out, pair, fraction, seed, "hard sharing")), "--coupling", "none", *base]))
                runs.append((run_dir(out, pair, fraction, seed, "coupling"), ["train-pair", str(small), str(big), str(run_dir(out, pair, fraction, seed, "coupling")), "--coupling", "full", *base, *coupled]))
    return runs


def reuse_sweep(sweep_out: Path, out: Path, seeds: List[int], setting: str) -> None:
    """Link the sweep's finished 100% runs (hard sharing and the chosen setting, same seeds) instead of retraining."""
    for seed in seeds:
        for pair in PAIRS:
            for system, name in (("hard sharing", "none"), ("coupling", setting)):
                source = sweep_out / f"{slug(pair[0])}+{slug(pair[1])}" / f"seed{seed}" / name
                target = run_dir(out, pair, 1.0, seed, system)
                if (source / "run.json").is_file() and not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.symlink_to(source.resolve(), target_is_directory=True)


def test_scores(run: Path) -> Dict[str, Dict]:
    """{vertical: benchmark scores on its test split} of a finished run (cached in ``test_scores.json``)."""
    cache = run / "test_scores.json"
    if cache.is_file():
        return srsly.read_json(cache)
    info_path = run / "run.json"
    if not info_path.is_file():
        return {}
    from spacy_mtlave.evaluation.evaluate import evaluate_pipeline

    info = srsly.read_json(info_path)
    out = {}
    for vertical, paths in info["verticals"].items():
        corpus = (run / paths["corpus"]).resolve()
        scores = evaluate_pipeline((run / paths["model"]).resolve(), corpus / "test.spacy", corpus / "train.spacy")
        out[vertical] = {key: scores.get(key) for key, _ in METRICS}
    srsly.write_json(cache, out)
    return out


def collect(out: Path, fractions: List[float], seeds: List[int]) -> Dict:
    """results[pair][fraction][system][vertical][metric] = list over seeds (test split)."""
    results: Dict = {}
    for pair in PAIRS:
        for fraction in fractions:
            cell = results.setdefault(f"{pair[0]} + {pair[1]}", {}).setdefault(f"{fraction:g}", {})
            for seed in seeds:
                for system in SYSTEMS:
                    if system == "single":
                        scores = {}
                        for vertical in pair:
                            scores.update(test_scores(run_dir(out, pair, fraction, seed, f"single_{slug(vertical)}")))
                    else:
                        scores = test_scores(run_dir(out, pair, fraction, seed, system))
                    for vertical, values in scores.items():
                        for key, _ in METRICS:
                            if values.get(key) is not None:
                                cell.setdefault(system, {}).setdefault(vertical, {}).setdefault(key, []).append(100 * values[key])
    return results


def _ms(values: List[float]) -> str:
    return f"{mean(values):.1f} +- {pstdev(values):.1f}" if values else "-"


def tables(results: Dict, fractions: List[float]) -> str:
    """Markdown: per fraction, the reduced vertical of each pair (mean +- sd over seeds) for the three systems, the
    mean over pairs, and the coupling's gain over hard sharing in units of the hard-sharing sd; at 100%, both
    verticals' mean per pair too."""
    lines = []
    for fraction in fractions:
        f = f"{fraction:g}"
        lines += [f"### {100 * fraction:g}% of the reduced vertical's training titles", ""]
        lines.append("| pair (reduced vertical first) | " + " | ".join(f"{s} {label}" for key, label in METRICS for s in SYSTEMS) + " | coupling - hard (sd units, macro-F1) |")
        lines.append("|---|" + "---|" * (len(METRICS) * len(SYSTEMS) + 1))
        pooled: Dict[str, Dict[str, List[float]]] = {}
        for pair_name, cells in results.items():
            reduced = pair_name.split(" + ")[0]
            cell = cells.get(f, {})
            row = [pair_name]
            for key, _ in METRICS:
                for system in SYSTEMS:
                    values = cell.get(system, {}).get(reduced, {}).get(key, [])
                    row.append(_ms(values))
            hard = cell.get("hard sharing", {}).get(reduced, {}).get("macro_f1", [])
            coupled = cell.get("coupling", {}).get(reduced, {}).get("macro_f1", [])
            row.append(_gain(coupled, hard))
            lines.append("| " + " | ".join(row) + " |")
            for system in SYSTEMS:
                for key, _ in METRICS:
                    values = cell.get(system, {}).get(reduced, {}).get(key, [])
                    if values:
                        pooled.setdefault(system, {}).setdefault(key, []).append(mean(values))
        seeds_means = _seed_means(results, f)
        row = ["**mean of the 5 reduced verticals** (sd over seeds)"]
        for key, _ in METRICS:
            for system in SYSTEMS:
                row.append(_ms(seeds_means.get(system, {}).get(key, [])))
        row.append(_gain(seeds_means.get("coupling", {}).get("macro_f1", []), seeds_means.get("hard sharing", {}).get("macro_f1", [])))
        lines += ["| " + " | ".join(row) + " |", ""]
        if fraction == 1.0:
            lines += ["Both verticals of each pair (mean of the two, mean +- sd over seeds), macro-F1:", ""]
            lines += ["| pair | single | hard sharing | coupling | coupling - hard (sd units) |", "|---|---|---|---|---|"]
            for pair_name, cells in results.items():
                cell = cells.get(f, {})
                per_system = {s: _pair_seed_means(cell.get(s, {})) for s in SYSTEMS}
                lines.append(f"| {pair_name} | " + " | ".join(_ms(per_system[s]) for s in SYSTEMS) + f" | {_gain(per_system['coupling'], per_system['hard sharing'])} |")
            lines.append("")
    return "\n".join(lines)


def _gain(coupled: List[float], hard: List[float]) -> str:
    if not coupled or not hard:
        return "-"
    sd = pstdev(hard) or 1e-9
    return f"{mean(coupled) - mean(hard):+.1f} ({(mean(coupled) - mean(hard)) / sd:+.1f} sd)"


def _seed_means(results: Dict, f: str) -> Dict[str, Dict[str, List[float]]]:
    """Per system and metric: for each seed, the mean over the pairs' reduced verticals."""
    out: Dict[str, Dict[str, List[float]]] = {}
    for system in SYSTEMS:
        for key, _ in METRICS:
            per_pair = [cells.get(f, {}).get(system, {}).get(name.split(" + ")[0], {}).get(key, []) for name, cells in results.items()]
            if per_pair and all(per_pair) and len({len(v) for v in per_pair}) == 1:
                out.setdefault(system, {})[key] = [mean(v[i] for v in per_pair) for i in range(len(per_pair[0]))]
    return out


def _pair_seed_means(cell: Dict) -> List[float]:
    values = [v.get("macro_f1", []) for v in cell.values()]
    if len(values) != 2 or len({len(v) for v in values}) != 1:
        return []
    return [mean(v[i] for v in values) for i in range(len(values[0]))]


def figure(results: Dict, fractions: List[float], path: Path) -> None:
    """Mean over the 5 reduced verticals (error bars: sd over seeds) of macro-F1 and rare-tag F1 per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (key, label) in zip(axes, (METRICS[0], METRICS[2])):
        for i, system in enumerate(SYSTEMS):
            xs, ys, es = [], [], []
            for fraction in fractions:
                values = _seed_means(results, f"{fraction:g}").get(system, {}).get(key, [])
                if values:
                    xs.append(100 * fraction + (i - 1) * 1.5)
                    ys.append(mean(values))
                    es.append(pstdev(values))
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=system)
        ax.set_xlabel("training titles of the reduced vertical (%)")
        ax.set_ylabel(f"{label} (test, mean of 5 reduced verticals)")
        ax.set_xticks([100 * f for f in fractions])
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("Low-resource setting: one vertical of each benchmark pair reduced, partner at 100%")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--out", type=Path, default=Path("training/low_resource"))
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.2, 0.5, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--setting", default=None, choices=[n for n, (c, _) in SETTINGS.items() if c != "none"], help="coupled setting (default: the sweep's best)")
    parser.add_argument("--sweep", type=Path, default=Path("docs/results/sweep.json"))
    parser.add_argument("--sweep-out", type=Path, default=Path("training/sweep"), help="the sweep's runs (reused at 100%%)")
    parser.add_argument("--vectors", type=Path, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--output", type=Path, default=Path("docs/results/low_resource"))
    parser.add_argument("--table-only", action="store_true", help="only score and tabulate finished runs")
    a = parser.parse_args()
    for fraction in a.fractions:
        if not 0 < fraction <= 1:
            raise SystemExit(f"error: --fractions must be in (0, 1], got {fraction}")
    setting = a.setting or winner(a.sweep)
    print(f"coupled setting: {setting} {' '.join(SETTINGS[setting][1])}", flush=True)
    if not a.table_only:
        reuse_sweep(a.sweep_out, a.out, a.seeds, setting)
        todo = plan(a.corpus, a.out, a.fractions, a.seeds, setting, a.vectors)
        with ThreadPoolExecutor(a.jobs) as pool:
            for i, (target, code, seconds) in enumerate(pool.map(run, todo), start=1):
                status = "ok" if code == 0 else f"FAILED (exit {code}, see {target}.log)"
                print(f"[{i}/{len(todo)}] {target} {status} {seconds:.0f}s", flush=True)
    results = collect(a.out, a.fractions, a.seeds)
    if not any(cell for cells in results.values() for cell in cells.values()):
        raise SystemExit(f"error: no finished run under {a.out}")
    markdown = f"Coupled setting: `{setting}` ({' '.join(SETTINGS[setting][1])}), seeds {a.seeds}, test split.\n\n" + tables(results, a.fractions)
    a.output.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.output}.md").write_text(markdown, encoding="utf8")
    srsly.write_json(f"{a.output}.json", {"setting": setting, "seeds": a.seeds, "results": results})
    figure(results, a.fractions, Path(f"{a.output}.png"))
    print(markdown)


if __name__ == "__main__":
    main()
