"""The paper's Table 3, Table 4 and Figure 4 from trained runs (directories holding a ``run.json``, see
``spacy_mtlave.training.run_info``): evaluate every run's pipelines on their test corpora, aggregate over seeds, plot the
coupling's label-label attention and write Markdown, JSON and PNG files to one report directory."""
import os
import statistics
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy
import srsly

from ..training.run_info import (  # noqa: F401
    BASELINE_NER,
    DEFAULT_MULTI,
    PAIR_SYSTEMS,
    SINGLE,
    SYSTEM_ORDER,
    Run,
    read_run,
    system_name,
)
from ..vertical import slugify
from .evaluate import evaluate_pipeline, label_warning, percent

METRICS = (("macro_p", "macro-P"), ("macro_r", "macro-R"), ("accuracy", "accuracy"), ("macro_f1", "macro-F1"),
           ("ents_p", "span P"), ("ents_r", "span R"), ("ents_f", "span F1"), ("rare_tag_f1", "rare-tag F1"))
# attention.json keys -> (paper's term, kind of attention, anchors from vertical 0 or 1)
TERMS = (("context_12", "CCE", "context", 0), ("context_21", "CCE'", "context", 1),
         ("label_12", "LCE", "label", 0), ("label_21", "LCE'", "label", 1))
Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _newest_mtime(path: Path) -> float:
    return max([path.stat().st_mtime] + [p.stat().st_mtime for p in path.rglob("*")])


def evaluate_run(run: Run, rare_max: int = 15, log: Log = _stderr) -> Dict[str, Dict[str, Any]]:
    """Scores per vertical of ``run`` on ``<corpus>/test.spacy`` (train counts from ``<corpus>/train.spacy``),
    cached as ``RUN_DIR/eval_<slug>.json`` and reused while newer than the model and the corpus."""
    results = {}
    for vertical, (model, corpus) in run.verticals.items():
        test, train = corpus / "test.spacy", corpus / "train.spacy"
        cache = run.path / f"eval_{slugify(vertical)}.json"
        label = f"{run.path} {vertical} ({run.system}, seed {run.seed})"
        if not model.is_dir():
            raise ValueError(f"{run.path / 'run.json'}: model {model} of {vertical!r} not found")
        inputs = [_newest_mtime(model)] + [p.stat().st_mtime for p in (test, train) if p.is_file()]
        if cache.is_file() and cache.stat().st_mtime > max(inputs):
            cached = srsly.read_json(cache)
            if cached.get("rare_max") == rare_max:
                log(f"{label}: cached {cache.name}, macro-F1 {100 * cached['macro_f1']:.1f}")
                results[vertical] = cached
                continue
        scores = evaluate_pipeline(model, test, train if train.is_file() else None, rare_max=rare_max)
        scores["rare_max"] = rare_max
        srsly.write_json(cache, scores)
        warning = label_warning(scores)
        log(f"{label}: macro-F1 {100 * scores['macro_f1']:.1f}, span F1 {percent(scores['ents_f'])}" + (f" ({warning})" if warning else ""))
        results[vertical] = scores
    return results


# ---------------------------------------------------------------- Table 3: aggregation over seeds (pure)

def mean_sd(values: Sequence[Optional[float]]) -> Dict[str, Any]:
    """Mean and sample standard deviation of the values that are not None; sd None below 2 values."""
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": statistics.fmean(kept), "sd": statistics.stdev(kept) if len(kept) > 1 else None, "n": len(kept)}


def _by_seed(records: Sequence[Dict[str, Any]], system: str, vertical: str) -> Dict[int, Dict[str, Any]]:
    return {r["seed"]: r["metrics"] for r in records if r["system"] == system and r["vertical"] == vertical}


def _delta(a: Dict[str, Any], b: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """``a`` minus ``b`` (mean_sd dicts); ``exceeds_sd``: |difference| > the larger sd (None without any sd)."""
    if a["mean"] is None or b["mean"] is None:
        return None
    diff = a["mean"] - b["mean"]
    sds = [s for s in (a["sd"], b["sd"]) if s is not None]
    return {"diff": diff, "sd": max(sds) if sds else None, "exceeds_sd": abs(diff) > max(sds) if sds else None}


def _mean_over_verticals(records: Sequence[Dict[str, Any]], system: str, verticals: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """Per seed the mean over ``verticals``, then mean_sd over the seeds all of them have (no common seed: the
    mean of the per-vertical means, sd None)."""
    seeds = [set(_by_seed(records, system, v)) for v in verticals]
    common = sorted(set.intersection(*seeds)) if seeds else []
    out = {}
    for key, _ in METRICS:
        if common:
            per_seed = []
            for seed in common:
                values = [_by_seed(records, system, v)[seed].get(key) for v in verticals]
                values = [x for x in values if x is not None]
                per_seed.append(statistics.fmean(values) if values else None)
            out[key] = mean_sd(per_seed)
        else:
            means = [mean_sd([m.get(key) for m in _by_seed(records, system, v).values()])["mean"] for v in verticals]
            out[key] = dict(mean_sd(means), sd=None, n=0)
    return out


def summarise(records: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Table 3 from records ``{"system", "vertical", "seed", "metrics"}`` (metrics as fractions).

    Returns ``systems`` (ordered), ``verticals`` {vertical: {system: {"n_seeds", "seeds", metric: mean_sd,
    "delta": {metric: _delta vs single}}}} and ``mean`` {system: {"verticals", metric: mean_sd, "delta"}}: the
    mean over the system's verticals (per seed, then over seeds); its delta compares single on the same verticals.
    """
    systems = sorted({r["system"] for r in records}, key=lambda s: (SYSTEM_ORDER.index(s) if s in SYSTEM_ORDER else len(SYSTEM_ORDER), s))
    table: Dict[str, Dict[str, Any]] = {}
    for vertical in sorted({r["vertical"] for r in records}):
        table[vertical] = {}
        for system in systems:
            runs = _by_seed(records, system, vertical)
            if runs:
                row: Dict[str, Any] = {"n_seeds": len(runs), "seeds": sorted(runs)}
                row.update({key: mean_sd([m.get(key) for m in runs.values()]) for key, _ in METRICS})
                table[vertical][system] = row
        single = table[vertical].get(SINGLE)
        for system, row in table[vertical].items():
            if single is not None and system != SINGLE:
                row["delta"] = {key: _delta(row[key], single[key]) for key, _ in METRICS}
    means: Dict[str, Dict[str, Any]] = {}
    for system in systems:
        verticals = [v for v in table if system in table[v]]
        means[system] = {"verticals": verticals, **_mean_over_verticals(records, system, verticals)}
        if system != SINGLE and all(SINGLE in table[v] for v in verticals):
            single = _mean_over_verticals(records, SINGLE, verticals)
            means[system]["delta"] = {key: _delta(means[system][key], single[key]) for key, _ in METRICS}
    return {"systems": systems, "verticals": table, "mean": means}


def _cell(stat: Dict[str, Any]) -> str:
    if stat["mean"] is None:
        return "n/a"
    return percent(stat["mean"]) + (f" ± {100 * stat['sd']:.1f}" if stat["sd"] is not None else "")


def _delta_cell(delta: Optional[Dict[str, Any]]) -> str:
    if delta is None:
        return "–"
    verdict = {True: "> 1 sd", False: "within 1 sd", None: "no sd"}[delta["exceeds_sd"]]
    return f"{100 * delta['diff']:+.1f} ({verdict})"


def table3_markdown(summary: Dict[str, Any]) -> str:
    header = ["vertical", "system", "n seeds"] + [name for _, name in METRICS] + ["Δ macro-F1 vs single"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for vertical, rows in summary["verticals"].items():
        for system, row in rows.items():
            cells = [vertical, system, str(row["n_seeds"])] + [_cell(row[key]) for key, _ in METRICS]
            cells.append(_delta_cell((row.get("delta") or {}).get("macro_f1")))
            lines.append("| " + " | ".join(cells) + " |")
    for system, row in summary["mean"].items():
        n = len(row["verticals"])
        cells = [f"**mean over {n} vertical{'s' if n > 1 else ''}**", system, str(row["macro_f1"]["n"])]
        cells += [_cell(row[key]) for key, _ in METRICS] + [_delta_cell((row.get("delta") or {}).get("macro_f1"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- Table 4: per-tag improvement (pure)

def _mean_per_tag(runs: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    """Per gold tag (support > 0 in some run): P/R/F1 averaged over runs, and the training count."""
    tags = sorted({t for m in runs for t, row in m["per_tag"].items() if row["support"] > 0})
    out = {}
    for tag in tags:
        rows = [m["per_tag"].get(tag, {"p": 0.0, "r": 0.0, "f": 0.0}) for m in runs]
        out[tag] = {k: statistics.fmean(row[k] for row in rows) for k in ("p", "r", "f")}
        out[tag]["train_count"] = max(int(row.get("train_count", 0)) for row in rows)
    return out


def tag_improvements(single: Sequence[Dict[str, Any]], multi: Sequence[Dict[str, Any]], rare_max: int = 15) -> List[Dict[str, Any]]:
    """Table 4 rows of one vertical from the single and multi runs' scores (``per_tag`` blocks).

    ``improvement`` is the paper's %Imp: F1(multi) - F1(single) (Table 4: 0.29 -> 0.80 is 0.51);
    ``relative_gain`` is that divided by F1(single) (None when it is 0). Sorted by improvement, largest first,
    then by training count; ``rare``: seen at most ``rare_max`` times in training.
    """
    s, m = _mean_per_tag(single), _mean_per_tag(multi)
    rows = []
    for tag in sorted(set(s) | set(m)):
        a, b = s.get(tag, {"p": 0.0, "r": 0.0, "f": 0.0, "train_count": 0}), m.get(tag, {"p": 0.0, "r": 0.0, "f": 0.0, "train_count": 0})
        count = max(a["train_count"], b["train_count"])
        rows.append({
            "tag": tag, "train_count": count, "rare": count <= rare_max,
            "single": {k: a[k] for k in ("p", "r", "f")}, "multi": {k: b[k] for k in ("p", "r", "f")},
            "improvement": b["f"] - a["f"], "relative_gain": (b["f"] - a["f"]) / a["f"] if a["f"] > 0 else None,
        })
    return sorted(rows, key=lambda r: (-r["improvement"], r["train_count"], r["tag"]))


def choose_multi(systems: Sequence[str], table3_rows: Dict[str, Any], multi: Optional[str] = None) -> Optional[str]:
    """``multi`` if given (None when the vertical lacks it), else "full coupling" if present, else the pair
    system with the best mean macro-F1."""
    if multi is not None:
        return multi if multi in systems else None
    pairs = [s for s in systems if s in PAIR_SYSTEMS.values()]
    if DEFAULT_MULTI in pairs:
        return DEFAULT_MULTI
    return max(pairs, key=lambda s: table3_rows[s]["macro_f1"]["mean"] or 0.0, default=None)


def table4_markdown(vertical: Dict[str, Any]) -> str:
    header = ["tag", "# train", "rare", "single P", "single R", "single F1", "multi P", "multi R", "multi F1", "%Imp (F1 diff)", "relative gain %"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in vertical["rows"]:
        rel = "n/a" if row["relative_gain"] is None else f"{100 * row['relative_gain']:+.1f}"
        cells = [row["tag"], str(row["train_count"]), "**rare**" if row["rare"] else ""]
        cells += [percent(row[side][k]) for side in ("single", "multi") for k in ("p", "r", "f")]
        cells += [f"{100 * row['improvement']:+.1f}", rel]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- Figure 4: label-label attention

def average_attention(attentions: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Element-wise mean of the matrices of several ``attention.json`` of one pair; ValueError when their
    verticals or tags differ."""
    first = attentions[0]
    for other in attentions[1:]:
        for key in ("verticals", "tags1", "tags2"):
            if other[key] != first[key]:
                raise ValueError(f"attention.json: {key} differ between runs of one pair ({first[key]} vs {other[key]})")
    out = {key: first[key] for key in ("verticals", "tags1", "tags2")}
    for key, *_ in TERMS:
        out[key] = numpy.mean([numpy.asarray(a[key], dtype="float64") for a in attentions], axis=0)
    return out


def normalise_rows(matrix: numpy.ndarray) -> numpy.ndarray:
    """Each row divided by its sum (the share of the anchor tag's attention per partner tag); zero rows stay 0."""
    matrix = numpy.asarray(matrix, dtype="float64")
    sums = matrix.sum(axis=1, keepdims=True)
    return numpy.divide(matrix, sums, out=numpy.zeros_like(matrix), where=sums > 0)


def _attribute(tag: str) -> Optional[str]:
    return tag[2:].lower() if tag[:2] in ("B-", "I-") else None


def label_level(matrix: numpy.ndarray, anchor_tags: Sequence[str], partner_tags: Sequence[str]) -> Tuple[List[str], List[str], numpy.ndarray]:
    """Attribute x attribute attention [n_anchor_attrs, n_partner_attrs] (lower-cased names, B-/I- merged, ``O``
    dropped): per anchor attribute, the mean of its tags' non-empty normalised rows, summed over each partner
    attribute's tags."""
    norm = normalise_rows(matrix)
    anchors = sorted({a for a in map(_attribute, anchor_tags) if a})
    partners = sorted({a for a in map(_attribute, partner_tags) if a})
    columns = numpy.zeros((len(partner_tags), len(partners)))
    for j, tag in enumerate(partner_tags):
        if _attribute(tag):
            columns[j, partners.index(_attribute(tag))] = 1.0
    out = numpy.zeros((len(anchors), len(partners)))
    for i, name in enumerate(anchors):
        rows = [norm[k] for k, tag in enumerate(anchor_tags) if _attribute(tag) == name and norm[k].sum() > 0]
        if rows:
            out[i] = numpy.mean(rows, axis=0) @ columns
    return anchors, partners, out


def alignment_score(matrix: numpy.ndarray, anchor_tags: Sequence[str], partner_tags: Sequence[str]) -> Dict[str, Any]:
    """Among attributes named in both tag sets (case-insensitive, B-/I- stripped) with any attention, the share
    whose most-attended partner attribute (``label_level``) is the same-named one."""
    anchors, partners, attr = label_level(matrix, anchor_tags, partner_tags)
    shared = sorted(set(anchors) & set(partners))
    hits, evaluated, best = [], [], {}
    for name in shared:
        row = attr[anchors.index(name)]
        if row.sum() <= 0:
            continue
        evaluated.append(name)
        best[name] = partners[int(numpy.argmax(row))]
        if row[partners.index(name)] >= row.max():
            hits.append(name)
    return {"score": len(hits) / len(evaluated) if evaluated else None, "n_shared": len(shared), "n_evaluated": len(evaluated),
            "aligned": hits, "best_partner": best}


def top_pairs(matrix: numpy.ndarray, anchor_tags: Sequence[str], partner_tags: Sequence[str], k: int = 10) -> List[Dict[str, Any]]:
    """The ``k`` (anchor tag, partner tag) pairs of highest mean attention, ``O`` left out."""
    matrix = numpy.asarray(matrix, dtype="float64")
    pairs = [(matrix[i, j], a, p) for i, a in enumerate(anchor_tags) for j, p in enumerate(partner_tags)
             if a != "O" and p != "O" and matrix[i, j] > 0]
    return [{"anchor": a, "partner": p, "attention": float(v)} for v, a, p in sorted(pairs, key=lambda x: (-x[0], x[1], x[2]))[:k]]


def plot_attention(attention: Dict[str, Any], path: Path, title: str) -> Path:
    """A 2 x 2 heatmap PNG (context CCE/CCE', label LCE/LCE'), each row normalised over the partner's tags."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state

    v1, v2 = attention["verticals"]
    tags = (attention["tags1"], attention["tags2"])
    n = max(len(t) for t in tags)
    size = max(6.0, 0.28 * n + 3.0)
    fig = Figure(figsize=(2 * size + 2, 2 * size + 1), layout="constrained")
    axes = fig.subplots(2, 2)
    fontsize = max(5, min(9, int(220 / max(n, 1))))
    for ax, (key, term, kind, side) in zip(axes.T.flat, TERMS):
        rows, cols = tags[side], tags[1 - side]
        shares = normalise_rows(attention[key])
        image = ax.imshow(shares, cmap="viridis", vmin=0.0, vmax=max(float(shares.max()), 1e-9), aspect="auto")
        ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=fontsize)
        ax.set_yticks(range(len(rows)), rows, fontsize=fontsize)
        ax.set_xlabel(f"{(v1, v2)[1 - side]} tags (lender)")
        ax.set_ylabel(f"{(v1, v2)[side]} tags (borrower)")
        ax.set_title(f"{term}: {kind} attention, {(v1, v2)[side]} → {(v1, v2)[1 - side]}")
        fig.colorbar(image, ax=ax, shrink=0.8, label="share of row attention")
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    return Path(path)


def figure4(runs: Sequence[Run], output_dir: Path, top_k: int = 10) -> List[Dict[str, Any]]:
    """Per pair and coupling mode (not "none": its attention is not trained), the seed-averaged attention:
    heatmap ``attention_<v1>_<v2>.png`` (full coupling; other modes get a ``_<mode>`` suffix), top pairs and
    alignment per term."""
    groups: Dict[Tuple[Tuple[str, ...], str], List[Run]] = {}
    for run in runs:
        if run.kind == "pair" and run.coupling != "none" and (run.path / "attention.json").is_file():
            attention = srsly.read_json(run.path / "attention.json")
            groups.setdefault((tuple(attention["verticals"]), run.system), []).append(run)
    figures = []
    for (verticals, system), group in sorted(groups.items()):
        attention = average_attention([srsly.read_json(r.path / "attention.json") for r in group])
        suffix = "" if system == PAIR_SYSTEMS["full"] else "_" + slugify(system.replace(PAIR_SYSTEMS["full"], "full"))
        name = f"attention_{slugify(verticals[0])}_{slugify(verticals[1])}{suffix}"
        seeds = sorted(r.seed for r in group)
        title = f"{verticals[0]} + {verticals[1]} ({system}, {len(seeds)} seed(s)): label-label attention, rows normalised"
        plot_attention(attention, Path(output_dir) / f"{name}.png", title)
        tags = (attention["tags1"], attention["tags2"])
        terms = {}
        for key, term, kind, side in TERMS:
            terms[term] = {
                "key": key, "kind": kind, "anchor": verticals[side], "partner": verticals[1 - side],
                "alignment": alignment_score(attention[key], tags[side], tags[1 - side]),
                "top_pairs": top_pairs(attention[key], tags[side], tags[1 - side], top_k),
            }
        figures.append({"verticals": list(verticals), "system": system, "seeds": seeds,
                        "runs": [str(r.path) for r in group], "png": f"{name}.png", "terms": terms})
    return figures


def figure4_markdown(figure: Dict[str, Any]) -> str:
    v1, v2 = figure["verticals"]
    lines = [f"### {v1} + {v2}: {figure['system']} (seeds {', '.join(map(str, figure['seeds']))})", "",
             f"![{v1} + {v2} label-label attention]({figure['png']})", "",
             "Alignment (attributes named in both verticals whose most-attended partner is the same-named one):", ""]
    for term, info in figure["terms"].items():
        a = info["alignment"]
        score = "n/a" if a["score"] is None else f"{100 * a['score']:.0f}%"
        lines.append(f"- {term} ({info['kind']}, {info['anchor']} → {info['partner']}): {score} "
                     f"({len(a['aligned'])} of the {a['n_evaluated']} shared names with any attention; {a['n_shared']} shared)")
    for term, info in figure["terms"].items():
        lines += ["", f"Top pairs, {term} ({info['anchor']} borrower → {info['partner']} lender, mean attention):", ""]
        lines += [f"- {p['anchor']} → {p['partner']} ({p['attention']:.3f})" for p in info["top_pairs"]] or ["- none"]
    return "\n".join(lines)


# ---------------------------------------------------------------- the report

def write_report(run_dirs: Sequence[Path], output_dir: Path, rare_max: int = 15, multi: Optional[str] = None, log: Log = _stderr) -> Path:
    """Evaluate ``run_dirs`` and write table3/table4/figure4 (.md, .json), the heatmaps and README.md to
    ``output_dir``; returns the README path. ``multi``: Table 4's multi-task system (see ``choose_multi``)."""
    runs = [read_run(d) for d in run_dirs]
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for run in runs:
        for vertical, scores in evaluate_run(run, rare_max, log).items():
            records.append({"system": run.system, "vertical": vertical, "seed": run.seed, "run": str(run.path), "metrics": scores})
    summary = summarise(records)
    srsly.write_json(output_dir / "table3.json", summary)
    (output_dir / "table3.md").write_text(table3_markdown(summary) + "\n", encoding="utf8")

    table4 = {}
    for vertical, rows in summary["verticals"].items():
        chosen = choose_multi(list(rows), rows, multi)
        if SINGLE not in rows or chosen is None:
            continue
        by = {s: [r["metrics"] for r in records if r["vertical"] == vertical and r["system"] == s] for s in (SINGLE, chosen)}
        table4[vertical] = {"multi": chosen, "rare_max": rare_max, "n_seeds": {s: len(v) for s, v in by.items()},
                            "rows": tag_improvements(by[SINGLE], by[chosen], rare_max)}
    srsly.write_json(output_dir / "table4.json", table4)
    table4_md = "\n\n".join(f"### {v}: single vs {t['multi']}\n\n{table4_markdown(t)}" for v, t in table4.items())
    (output_dir / "table4.md").write_text(table4_md + "\n", encoding="utf8")

    figures = figure4(runs, output_dir)
    srsly.write_json(output_dir / "figure4.json", figures)
    figure_md = "\n\n".join(figure4_markdown(f) for f in figures)
    (output_dir / "figure4.md").write_text(figure_md + "\n", encoding="utf8")

    listing = "; ".join(f"{os.path.relpath(r.path.resolve(), output_dir.resolve())} ({r.system}, seed {r.seed})" for r in runs)
    seeds = sorted({r.seed for r in runs})
    readme = [
        "# Evaluation report", "",
        f"Runs: {listing}. Seeds: {', '.join(map(str, seeds))}.", "",
        "## Table 3: single-task vs multi-task", "",
        "Percent, mean ± sample sd over the n seeds (no sd for one seed). Macro-P/R over the gold test tags "
        "(B- and I- separate, `O` left out), macro-F1 their harmonic mean, accuracy over all tokens, span P/R/F1 "
        f"exact-match micro, rare-tag F1 the mean F1 of tags seen <= {rare_max} times in training. Δ: mean "
        "difference to single on the same verticals; within the larger of the two sds it is not a gain. The mean rows "
        "average each seed over the system's verticals first.", "",
        table3_markdown(summary), "",
        "## Table 4: per-tag improvement", "",
        f"P/R/F1 (percent) averaged over seeds; %Imp as in the paper is F1(multi) - F1(single) in points, the relative "
        f"gain divides it by F1(single). Rare: <= {rare_max} training occurrences.", "",
        table4_md or "No vertical has both a single and a multi-task run.", "",
        "## Figure 4: label-label attention", "",
        "Mean attention per (borrower tag, lender tag) over the shortlist L, averaged over seeds; each heatmap row is "
        "normalised to sum to 1 over the lender's tags. Hard-sharing pairs (coupling none) train no attention and are "
        "left out.", "",
        figure_md or "No pair run with a trained coupling (cce, lce or full) and an attention.json.", "",
    ]
    path = output_dir / "README.md"
    path.write_text("\n".join(readme), encoding="utf8")
    return path
