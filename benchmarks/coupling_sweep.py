"""Sweep the coupling's settings on the DEV split of the 5 benchmark pairs and pick the default of configs/pair.cfg.

Each setting trains every pair of BENCHMARK.md (``train-pair`` with the setting's overrides) and is scored by the
mean over the 10 verticals of each vertical's dev macro-F1 at the checkpoint its own selection rule kept (read from
``joint/checkpoints/selection.json``: no test file is touched). Settings vary one factor at a time around a base
(score "emission", weight 10, thresh 0.8, top_k 10, all tokens coupled), plus the paper's weight 1 and hard sharing.

    python benchmarks/coupling_sweep.py --corpus corpus --out training/sweep --seeds 0 --jobs 2 --output docs/results/sweep
"""
import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import mean
from typing import Dict, List, Optional, Tuple

import srsly

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_results import PAIRS, run, slug  # noqa: E402

BASE = ["--components.coupling.weight", "10"]
SETTINGS: Dict[str, Tuple[str, List[str]]] = {
    "none": ("none", []),
    "paper_w1": ("full", ["--components.coupling.weight", "1"]),
    "w10": ("full", BASE),
    "w100": ("full", ["--components.coupling.weight", "100"]),
    "log_softmax_w10": ("full", BASE + ["--components.coupling.model.score", "log_softmax"]),
    "marginal_w100": ("full", ["--components.coupling.weight", "100", "--components.coupling.model.score", "marginal"]),
    "skip_outside_w10": ("full", BASE + ["--components.coupling.skip_outside", "true"]),
    "thresh09_w10": ("full", BASE + ["--components.coupling.thresh", "0.9"]),
    "top_k5_w10": ("full", BASE + ["--components.coupling.top_k", "5"]),
}


def sweep_jobs(corpus: Path, out: Path, seeds: List[int], settings: List[str], vectors: Optional[Path]):
    vec = ["--vectors", str(vectors)] if vectors else []
    runs = []
    for seed in seeds:
        for name in settings:
            coupling, extra = SETTINGS[name]
            for v1, v2 in PAIRS:
                target = out / f"{slug(v1)}+{slug(v2)}" / f"seed{seed}" / name
                runs.append((target, ["train-pair", str(corpus / slug(v1)), str(corpus / slug(v2)), str(target), "--coupling", coupling, "--seed", str(seed), *vec, *extra]))
    return runs


def dev_scores(run_dir: Path) -> Dict[str, float]:
    """{vertical: dev macro-F1 of the exported checkpoint} of one train-pair run (empty if it has none)."""
    selection = run_dir / "joint" / "checkpoints" / "selection.json"
    info = run_dir / "run.json"
    if not selection.is_file() or not info.is_file():
        return {}
    chosen = srsly.read_json(selection)
    rule = chosen["select"]
    verticals = list(srsly.read_json(info)["verticals"])
    return {v: 100 * chosen["chosen"][f"tagger_v{i}"][rule]["raw"] for i, v in enumerate(verticals, start=1)}


def table(out: Path, seeds: List[int], settings: List[str]) -> Tuple[str, Dict]:
    """Markdown table and JSON of mean dev macro-F1 per setting (over seeds and the 10 verticals), best first."""
    rows = {}
    for name in settings:
        per_pair, found = {}, []
        for v1, v2 in PAIRS:
            values = [s for seed in seeds for s in dev_scores(out / f"{slug(v1)}+{slug(v2)}" / f"seed{seed}" / name).values()]
            if values:
                per_pair[f"{v1} + {v2}"] = mean(values)
                found.extend(values)
        if len(per_pair) == len(PAIRS):
            rows[name] = {"mean": mean(found), "pairs": per_pair, "overrides": " ".join(SETTINGS[name][1]) or f"--coupling {SETTINGS[name][0]}"}
    if not rows:
        raise SystemExit(f"error: no finished sweep run under {out} (every setting needs all {len(PAIRS)} pairs)")
    ranked = sorted(rows, key=lambda n: -rows[n]["mean"])
    head = "| setting | overrides | mean dev macro-F1 | " + " | ".join(f"{a} + {b}" for a, b in PAIRS) + " |"
    lines = [head, "|" + "---|" * (3 + len(PAIRS))]
    for name in ranked:
        r = rows[name]
        lines.append(f"| {name} | `{r['overrides']}` | {r['mean']:.1f} | " + " | ".join(f"{v:.1f}" for v in r["pairs"].values()) + " |")
    return "\n".join(lines) + "\n", {"seeds": seeds, "ranked": ranked, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--out", type=Path, default=Path("training/sweep"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--vectors", type=Path, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None, help="write OUTPUT.md and OUTPUT.json")
    parser.add_argument("--table-only", action="store_true", help="only tabulate finished runs")
    a = parser.parse_args()
    if not a.table_only:
        todo = sweep_jobs(a.corpus, a.out, a.seeds, a.settings, a.vectors)
        with ThreadPoolExecutor(a.jobs) as pool:
            for i, (target, code, seconds) in enumerate(pool.map(run, todo), start=1):
                status = "ok" if code == 0 else f"FAILED (exit {code}, see {target}.log)"
                print(f"[{i}/{len(todo)}] {target} {status} {seconds:.0f}s", flush=True)
    markdown, data = table(a.out, a.seeds, a.settings)
    print(markdown)
    if a.output:
        a.output.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{a.output}.md").write_text(markdown, encoding="utf8")
        srsly.write_json(f"{a.output}.json", data)


if __name__ == "__main__":
    main()
