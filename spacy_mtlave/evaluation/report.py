"""The paper's Table 3, Table 4 and Figure 4 from trained runs (directories holding a ``run.json``, see
``spacy_mtlave.training.run_info``): evaluate every run's pipelines on their test corpora, aggregate over seeds, plot the
coupling's label-label attention and write Markdown, JSON and PNG files to one report directory."""
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import srsly

from ..outputs import write_json, write_text
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
from .attention import figure4, figure4_markdown
from .evaluate import check_rare_max, evaluate_pipeline, label_warning, percent
from .tables import (
    choose_multi,
    summarise,
    table3_markdown,
    table4_markdown,
    tag_improvements,
)

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _newest_mtime(path: Path) -> float:
    return max([path.stat().st_mtime] + [p.stat().st_mtime for p in path.rglob("*")])


def _read_cache(path: Path) -> Dict[str, Any]:
    """A cached evaluation, or {} (evaluate again) when it cannot be read."""
    try:
        cached = srsly.read_json(path)
    except (ValueError, OSError):
        return {}
    return cached if isinstance(cached, dict) and isinstance(cached.get("macro_f1"), (int, float)) else {}


def evaluate_run(run: Run, rare_max: int = 15, log: Log = _stderr, test_jsonl: Optional[Path] = None) -> Dict[str, Dict[str, Any]]:
    """Scores per vertical of ``run`` on ``<corpus>/test.spacy`` (train counts from ``<corpus>/train.spacy``),
    cached as ``RUN_DIR/eval_<slug>.json`` and reused while newer than the model and the corpus. With
    ``test_jsonl`` (the original attribute-value test file) also ExtractGPT's attribute-value metric on the
    vertical's offers (``av_p``, ``av_r``, ``av_f1``)."""
    results = {}
    for vertical, (model, corpus) in run.verticals.items():
        test, train = corpus / "test.spacy", corpus / "train.spacy"
        cache = run.path / f"eval_{slugify(vertical)}.json"
        label = f"{run.path} {vertical} ({run.system}, seed {run.seed})"
        if not model.is_dir():
            raise ValueError(f"{run.path / 'run.json'}: model {model} of {vertical!r} not found")
        inputs = [_newest_mtime(model)] + [p.stat().st_mtime for p in (test, train) if p.is_file()]
        if cache.is_file() and cache.stat().st_mtime > max(inputs):
            cached = _read_cache(cache)
            if cached.get("rare_max") == rare_max and (test_jsonl is None or "av_f1" in cached):
                log(f"{label}: cached {cache.name}, macro-F1 {100 * cached['macro_f1']:.1f}")
                results[vertical] = cached
                continue
        scores = evaluate_pipeline(model, test, train if train.is_file() else None, rare_max=rare_max)
        scores["rare_max"] = rare_max
        if test_jsonl is not None:
            scores.update(_attribute_values(model, vertical, test_jsonl))
        write_json(cache, scores)
        warning = label_warning(scores)
        log(f"{label}: macro-F1 {100 * scores['macro_f1']:.1f}, span F1 {percent(scores['ents_f'])}" + (f" ({warning})" if warning else ""))
        results[vertical] = scores
    return results



def _attribute_values(model: Path, vertical: str, test_jsonl: Path) -> Dict[str, Optional[float]]:
    """Micro P/R/F1 of the attribute-value metric on ``vertical``'s offers of ``test_jsonl`` (None without offers)."""
    from .attribute_values import evaluate_attribute_values

    scores = evaluate_attribute_values({vertical: model}, test_jsonl)["per_category"].get(vertical)
    micro = scores["micro"] if scores else {}
    return {"av_p": micro.get("precision"), "av_r": micro.get("recall"), "av_f1": micro.get("f1")}


# ---------------------------------------------------------------- the report

def write_report(
    run_dirs: Sequence[Path], output_dir: Path, rare_max: int = 15, multi: Optional[str] = None, log: Log = _stderr, test_jsonl: Optional[Path] = None
) -> Path:
    """Evaluate ``run_dirs`` and write table3/table4/figure4 (.md, .json), the heatmaps and README.md to
    ``output_dir``; returns the README path. ``multi``: Table 4's multi-task system (see ``choose_multi``)."""
    check_rare_max(rare_max)
    runs = [read_run(d) for d in run_dirs]
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for run in runs:
        for vertical, scores in evaluate_run(run, rare_max, log, test_jsonl).items():
            records.append({"system": run.system, "vertical": vertical, "seed": run.seed, "run": str(run.path), "metrics": scores})
    summary = summarise(records)
    write_json(output_dir / "table3.json", summary)
    write_text(output_dir / "table3.md", table3_markdown(summary) + "\n")

    table4 = {}
    for vertical, rows in summary["verticals"].items():
        chosen = choose_multi(list(rows), rows, multi)
        if SINGLE not in rows or chosen is None:
            continue
        by = {s: [r["metrics"] for r in records if r["vertical"] == vertical and r["system"] == s] for s in (SINGLE, chosen)}
        table4[vertical] = {"multi": chosen, "rare_max": rare_max, "n_seeds": {s: len(v) for s, v in by.items()},
                            "rows": tag_improvements(by[SINGLE], by[chosen], rare_max)}
    write_json(output_dir / "table4.json", table4)
    table4_md = "\n\n".join(f"### {v}: single vs {t['multi']}\n\n{table4_markdown(t)}" for v, t in table4.items())
    write_text(output_dir / "table4.md", table4_md + "\n")

    figures = figure4(runs, output_dir)
    write_json(output_dir / "figure4.json", figures)
    figure_md = "\n\n".join(figure4_markdown(f) for f in figures)
    write_text(output_dir / "figure4.md", figure_md + "\n")

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
    return write_text(output_dir / "README.md", "\n".join(readme))
