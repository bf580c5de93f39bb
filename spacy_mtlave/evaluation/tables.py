"""Table 3 (mean +- sd over seeds of every system, per vertical and overall) and Table 4 (per-tag improvement of a
multi-task system over single-task) of the report: pure functions over evaluation records."""
import statistics
from typing import Any, Dict, List, Optional, Sequence

from ..training.run_info import (
    DEFAULT_MULTI,
    PAIR_SYSTEMS,
    SINGLE,
    SYSTEM_ORDER,
)
from .evaluate import percent

METRICS = (("macro_p", "macro-P"), ("macro_r", "macro-R"), ("accuracy", "accuracy"), ("macro_f1", "macro-F1"),
           ("ents_p", "span P"), ("ents_r", "span R"), ("ents_f", "span F1"), ("rare_tag_f1", "rare-tag F1"),
           ("av_p", "AV micro-P"), ("av_r", "AV micro-R"), ("av_f1", "AV micro-F1"))
# the attribute-value metric's columns (ExtractGPT's slot metric, ``report --test-jsonl``): shown when measured
AV_KEYS = ("av_p", "av_r", "av_f1")
# attention.json keys -> (paper's term, kind of attention, anchors from vertical 0 or 1)


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
    measured = any(row[key]["mean"] is not None for rows in summary["verticals"].values() for row in rows.values() for key in AV_KEYS)
    metrics = [(key, name) for key, name in METRICS if measured or key not in AV_KEYS]
    header = ["vertical", "system", "n seeds"] + [name for _, name in metrics] + ["Δ macro-F1 vs single"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for vertical, rows in summary["verticals"].items():
        for system, row in rows.items():
            cells = [vertical, system, str(row["n_seeds"])] + [_cell(row[key]) for key, _ in metrics]
            cells.append(_delta_cell((row.get("delta") or {}).get("macro_f1")))
            lines.append("| " + " | ".join(cells) + " |")
    for system, row in summary["mean"].items():
        n = len(row["verticals"])
        cells = [f"**mean over {n} vertical{'s' if n > 1 else ''}**", system, str(row["macro_f1"]["n"])]
        cells += [_cell(row[key]) for key, _ in metrics] + [_delta_cell((row.get("delta") or {}).get("macro_f1"))]
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


