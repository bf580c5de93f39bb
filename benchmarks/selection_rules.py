"""Which checkpoint to keep per vertical: the best raw dev score, or the best trailing mean of 3 dev scores?

Every run of ``train-pair`` / ``train-group`` / ``train`` with the ``spacy_mtlave.vertical_checkpoints.v1`` logger keeps
both checkpoints of every head (``joint/checkpoints/<head>/{raw,smoothed}``, or ``checkpoints/`` for ``train``). This
script exports both for every vertical of the given runs and scores them on the vertical's TEST split, so it measures
(on test: say so wherever it is quoted) how much a noisy dev score costs; the default rule was fixed before.

    python benchmarks/selection_rules.py training/low_resource/*/f1/seed*/hard_sharing training/low_resource/*/f1/seed*/coupling \\
        --output docs/results/selection_rules
"""
import argparse
import tempfile
from pathlib import Path
from statistics import mean, pstdev
from typing import Dict, List

import srsly

from spacy_mtlave.evaluation.evaluate import evaluate_pipeline
from spacy_mtlave.training.export import split_vertical
from spacy_mtlave.training.run_info import read_run
from spacy_mtlave.vertical import slugify

RULES = ("raw", "smoothed")


def compare(run_dir: Path) -> List[Dict]:
    """One row per vertical of the run: the step each rule chose, its dev score and the test macro-F1 of both."""
    run = read_run(run_dir)
    joint = run_dir / "joint" if (run_dir / "joint").is_dir() else run_dir
    selection = srsly.read_json(joint / "checkpoints" / "selection.json")
    info = srsly.read_json(run_dir / "run.json")
    heads = list(selection["chosen"])
    rows = []
    for vertical, (model, corpus) in run.verticals.items():
        head = next((h for h in heads if h == f"tagger_{slugify(vertical)}"), None)
        if head is None:  # pair runs name their heads tagger_v1, tagger_v2 in the order of run.json
            head = heads[list(info["verticals"]).index(vertical)] if len(heads) > 1 else heads[0]
        row = {"run": str(run_dir), "vertical": vertical}
        for rule in RULES:
            chosen = selection["chosen"][head][rule]
            with tempfile.TemporaryDirectory() as tmp:
                path = split_vertical(joint / "model-best", head, Path(tmp) / "nlp", joint / "checkpoints" / head / rule)
                scores = evaluate_pipeline(path, corpus / "test.spacy")
            row[rule] = {"step": chosen["step"], "dev": 100 * chosen["raw"], "test": 100 * scores["macro_f1"]}
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--output", type=Path, default=None, help="write OUTPUT.md and OUTPUT.json")
    a = parser.parse_args()
    rows = [row for run in a.runs if (run / "run.json").is_file() for row in compare(run)]
    if not rows:
        raise SystemExit("error: none of the runs has a run.json and kept checkpoints")
    differ = [r for r in rows if r["raw"]["step"] != r["smoothed"]["step"]]
    gain = [r["smoothed"]["test"] - r["raw"]["test"] for r in rows]
    lines = [
        f"{len(rows)} (run, vertical) cases; the rules chose different checkpoints in {len(differ)}.",
        "",
        "| rule | mean dev macro-F1 of the kept checkpoint | mean TEST macro-F1 | sd over cases |",
        "|---|---|---|---|",
    ]
    for rule in RULES:
        lines.append(f"| {rule} | {mean(r[rule]['dev'] for r in rows):.2f} | {mean(r[rule]['test'] for r in rows):.2f} | {pstdev([r[rule]['test'] for r in rows]):.2f} |")
    if differ:
        d = [r["smoothed"]["test"] - r["raw"]["test"] for r in differ]
        lines += ["", f"Where they differ: smoothed - raw = {mean(d):+.2f} test macro-F1 on average "
                  f"(better in {sum(x > 0 for x in d)}, worse in {sum(x < 0 for x in d)}, equal in {sum(x == 0 for x in d)} of {len(d)})."]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    if a.output:
        Path(f"{a.output}.md").write_text(markdown, encoding="utf8")
        srsly.write_json(f"{a.output}.json", {"rows": rows, "mean_gain_smoothed_minus_raw": mean(gain)})


if __name__ == "__main__":
    main()
