"""How well `suggest-partners` predicts the measured multi-task gains.

For every trained pair run with the paper's coupling (`train-pair --coupling full`, no overrides) and every seed, the
gain of vertical v from partner u is macro-F1(v trained with u) - macro-F1(v single-task), same seed, test split;
gains are averaged over the seeds both runs exist for. Against the suggestion scores (computed on the training
data only) this reports, per vertical, the Spearman rank correlation over its trained partners, the pooled Spearman
correlation over all (vertical, partner) pairs with a permutation p-value, and whether the best-ranked trained
partner beats the others. Also the gains of `train-group` runs (all verticals jointly) if present.

    python -m spacy_mtlave suggest-partners corpus --output docs/results/partners.json
    python benchmarks/partner_gains.py training/results docs/results/partners.json --output docs/results/partner_gains.md

--output also writes the analysis as .json and the two heatmaps (score, measured gain) as .png next to it.
"""
import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

import numpy

from spacy_mtlave.evaluation.report import evaluate_run, read_run


def collect(results: Path) -> Tuple[Dict, Dict, Dict]:
    """single[v][seed], pair[(v, u)][seed], group[system][v][seed]: macro-F1 (fractions)."""
    single: Dict = defaultdict(dict)
    pair: Dict = defaultdict(dict)
    group: Dict = defaultdict(lambda: defaultdict(dict))
    for info in sorted(results.rglob("run.json")):
        run = read_run(info.parent)
        if run.overrides or "trf" in run.config:
            continue
        if run.kind == "single" and run.system == "single":
            for v, scores in evaluate_run(run, log=lambda _: None).items():
                single[v][run.seed] = scores["macro_f1"]
        elif run.kind == "pair" and run.coupling == "full":
            scores = evaluate_run(run, log=lambda _: None)
            (a, b) = list(scores)
            pair[a, b][run.seed] = scores[a]["macro_f1"]
            pair[b, a][run.seed] = scores[b]["macro_f1"]
        elif run.kind == "group":
            for v, scores in evaluate_run(run, log=lambda _: None).items():
                group[run.system][v][run.seed] = scores["macro_f1"]
    return single, pair, group


def ranks(x: List[float]) -> numpy.ndarray:
    """Ranks 1..n, ties get their average rank."""
    x = numpy.asarray(x, dtype=float)
    order = numpy.argsort(x, kind="mergesort")
    r = numpy.empty(len(x))
    r[order] = numpy.arange(1, len(x) + 1)
    for value in numpy.unique(x):
        r[x == value] = r[x == value].mean()
    return r


def spearman(x: List[float], y: List[float]) -> float:
    """Spearman's rank correlation (Pearson correlation of the ranks)."""
    return float(numpy.corrcoef(ranks(x), ranks(y))[0, 1])


def mean_gain(multi: Dict[int, float], single: Dict[int, float]) -> Tuple[float, int]:
    seeds = sorted(set(multi) & set(single))
    return (float(numpy.mean([multi[s] - single[s] for s in seeds])) if seeds else float("nan")), len(seeds)


def permutation_p(x: List[float], y: List[float], n: int = 10000, seed: int = 0) -> float:
    """One-sided p-value of a Spearman correlation at least as large as the observed one under shuffled y."""
    rng = numpy.random.RandomState(seed)
    observed = spearman(x, y)
    hits = sum(spearman(x, rng.permutation(y)) >= observed for _ in range(n))
    return (hits + 1) / (n + 1)


def analyse(results: Path, suggestions: Dict[str, List[Dict]]) -> Dict:
    single, pair, group = collect(results)
    score = {(v, row["partner"]): row for v, rows in suggestions.items() for row in rows}
    rank = {(v, row["partner"]): i + 1 for v, rows in suggestions.items() for i, row in enumerate(rows)}
    rows = []
    for (v, u), runs in sorted(pair.items()):
        gain, n = mean_gain(runs, single.get(v, {}))
        if n:
            rows.append({"vertical": v, "partner": u, "rank": rank[v, u], "score": score[v, u]["score"], "name": score[v, u]["name"],
                         "density": score[v, u]["density"], "gain": gain, "seeds": n})
    per_vertical = {}
    for v in sorted({r["vertical"] for r in rows}):
        mine = sorted((r for r in rows if r["vertical"] == v), key=lambda r: r["rank"])
        rho = spearman([r["score"] for r in mine], [r["gain"] for r in mine]) if len(mine) >= 3 else None
        per_vertical[v] = {"partners": len(mine), "spearman": rho, "best_ranked": mine[0]["partner"], "best_ranked_gain": mine[0]["gain"],
                           "mean_gain_others": float(numpy.mean([r["gain"] for r in mine[1:]])) if len(mine) > 1 else None,
                           "best_measured": max(mine, key=lambda r: r["gain"])["partner"]}
    x, y = [r["score"] for r in rows], [r["gain"] for r in rows]
    pooled = {"n": len(rows), "spearman": spearman(x, y), "p_one_sided": permutation_p(x, y)}
    for key in ("name", "density"):
        pooled[f"spearman_{key}"] = spearman([r[key] for r in rows], y)
    # within verticals: both centred on the vertical's mean, so "which vertical gains at all" does not count
    centred = [r for r in rows if per_vertical[r["vertical"]]["partners"] >= 2]
    means = {v: (numpy.mean([r["score"] for r in centred if r["vertical"] == v]), numpy.mean([r["gain"] for r in centred if r["vertical"] == v])) for v in per_vertical}
    xc = [r["score"] - means[r["vertical"]][0] for r in centred]
    yc = [r["gain"] - means[r["vertical"]][1] for r in centred]
    pooled["within"] = {"n": len(centred), "spearman": spearman(xc, yc), "p_one_sided": permutation_p(xc, yc)}
    gains = numpy.array(y)
    row_means = numpy.array([means[r["vertical"]][1] for r in rows if r in centred])
    pooled["share_of_gain_variance_between_verticals"] = float(numpy.var(row_means) / numpy.var(gains[[r in centred for r in rows]]))
    groups = {system: {v: dict(zip(("gain", "seeds"), mean_gain(runs, single.get(v, {})))) for v, runs in by_v.items()} for system, by_v in group.items()}
    return {"rows": rows, "per_vertical": per_vertical, "pooled": pooled, "group": groups}


def markdown(result: Dict) -> str:
    out = ["| vertical | partner | suggest rank | score | name | density | Δ macro-F1 vs single | seeds |", "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        out.append(f"| {r['vertical']} | {r['partner']} | {r['rank']} | {r['score']:.3f} | {r['name']:.3f} | {r['density']:.3f} | {100 * r['gain']:+.1f} | {r['seeds']} |")
    out += ["", "| vertical | trained partners | Spearman (score, gain) | best-ranked trained partner | its gain | mean gain of the others | best measured partner |",
            "|---|---|---|---|---|---|---|"]
    for v, p in result["per_vertical"].items():
        rho = "–" if p["spearman"] is None else f"{p['spearman']:+.2f}"
        others = "–" if p["mean_gain_others"] is None else f"{100 * p['mean_gain_others']:+.1f}"
        out.append(f"| {v} | {p['partners']} | {rho} | {p['best_ranked']} | {100 * p['best_ranked_gain']:+.1f} | {others} | {p['best_measured']} |")
    pooled = result["pooled"]
    out += ["", f"Pooled over {pooled['n']} (vertical, partner) pairs: Spearman {pooled['spearman']:+.2f} (one-sided permutation p = "
            f"{pooled['p_one_sided']:.3f}); name score alone {pooled['spearman_name']:+.2f}, density alone {pooled['spearman_density']:+.2f}. "
            f"Within verticals (score and gain centred on each vertical's mean, {pooled['within']['n']} pairs): Spearman "
            f"{pooled['within']['spearman']:+.2f} (p = {pooled['within']['p_one_sided']:.3f}). The vertical alone explains "
            f"{100 * pooled['share_of_gain_variance_between_verticals']:.0f}% of the variance of the gains."]
    return "\n".join(out)


def plot(result: Dict, suggestions: Dict[str, List[Dict]], path: Path) -> None:
    """Two vertical x partner heatmaps: the suggestion score and the measured gain (blank where no pair was trained)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(suggestions)
    score = numpy.full((len(names), len(names)), numpy.nan)
    gain = numpy.full_like(score, numpy.nan)
    for v, rows in suggestions.items():
        for row in rows:
            score[names.index(v), names.index(row["partner"])] = row["score"]
    for r in result["rows"]:
        gain[names.index(r["vertical"]), names.index(r["partner"])] = 100 * r["gain"]
    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5), constrained_layout=True)
    limit = numpy.nanmax(numpy.abs(gain))
    for ax, matrix, title, cmap, (lo, hi), fmt in (
        (axes[0], score, "suggest-partners score\n(training data only)", "viridis", (numpy.nanmin(score), numpy.nanmax(score)), "{:.2f}"),
        (axes[1], gain, "measured Δ macro-F1 vs single-task\n(points, test split, mean over seeds)", "RdBu", (-limit, limit), "{:+.1f}"),
    ):
        image = ax.imshow(matrix, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("partner")
        ax.set_ylabel("vertical")
        ax.set_title(title)
        for (i, j), value in numpy.ndenumerate(matrix):
            if not numpy.isnan(value):
                ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=7)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("suggestions", type=Path)
    parser.add_argument("--output", type=Path, default=None)
    a = parser.parse_args()
    result = analyse(a.results, json.loads(a.suggestions.read_text()))
    text = markdown(result)
    print(text)
    if a.output:
        a.output.write_text(text + "\n")
        a.output.with_suffix(".json").write_text(json.dumps(result, indent=1))
        plot(result, json.loads(a.suggestions.read_text()), a.output.with_suffix(".png"))


if __name__ == "__main__":
    main()
