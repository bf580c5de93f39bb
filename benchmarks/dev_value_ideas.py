"""Two prediction-time ideas for issue 15, scored on the dev rows only (never on test): seeds of *several* systems
voting on each value, and snapping a predicted value to a training value of the same attribute that overlaps it in
the title. Reads the runs ``llm_comparison.py`` trained (``OUT/<split>/seed<N>/<system>``); each pipeline predicts
the dev rows once and every vote is tallied from those proposals.

    OMP_NUM_THREADS=1 python benchmarks/dev_value_ideas.py --out training/llm --split large \\
        --systems group_values group pair single --output docs/results/dev_value_ideas

The training values of the snapping come from the training file minus its dev rows (what the models were trained on).
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Set, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_comparison import SPLIT_FILES, dev_jsonl, models_of, rows_with_dev_flag, run_dir  # noqa: E402

Proposals = List[Dict[str, Tuple[str, float]]]  # per dev offer: {attribute: (value, confidence)}


def proposals_of(target: Path, offers) -> Proposals:
    """One system run's most confident value per attribute for every offer (its category's pipeline)."""
    import spacy

    from spacy_mtlave.evaluation.attribute_values import scored_values

    out: Proposals = [{} for _ in offers]
    for vertical, model in models_of(target).items():
        nlp = spacy.load(model)
        rows = [i for i, offer in enumerate(offers) if offer.category == vertical]
        for i, doc in zip(rows, nlp.pipe(offers[i].text for i in rows)):
            out[i] = scored_values(doc)
    return out


def training_values(train_file: Path, every: int = 10) -> Dict[Tuple[str, str], Set[str]]:
    """{(category, attribute): gold values} of the training rows that are not dev rows (``rows_with_dev_flag``)."""
    values: Dict[Tuple[str, str], Set[str]] = {}
    for line, is_dev in rows_with_dev_flag(train_file, every):
        if is_dev:
            continue
        record = json.loads(line)
        for attribute, gold in record["target_scores"].items():
            values.setdefault((record["category"], attribute), set()).update(v.strip() for v in gold if v.strip() != "n/a")
    return values


def snap(offers, predictions: Sequence[Mapping[str, str]], known: Mapping[Tuple[str, str], Set[str]], mode: str) -> List[Dict[str, str]]:
    """Replace a predicted value by the longest training value of its attribute that occurs in the title and
    contains it (``extend``) or contains it or lies inside it (``overlap``)."""
    out = []
    for offer, predicted in zip(offers, predictions):
        snapped = dict(predicted)
        for attribute, value in predicted.items():
            candidates = [
                k for k in known.get((offer.category, attribute), ())
                if k != value and k in offer.text and (value in k or (mode == "overlap" and k in value))
            ]
            if candidates:
                snapped[attribute] = max(candidates, key=len)
        out.append(snapped)
    return out


def main() -> None:
    from spacy_mtlave.evaluation.attribute_values import read_offers, score_offers
    from spacy_mtlave.evaluation.value_vote import vote_values

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/oa-mine"))
    parser.add_argument("--out", type=Path, default=Path("training/llm"))
    parser.add_argument("--split", choices=sorted(SPLIT_FILES), default="large")
    parser.add_argument("--systems", nargs="+", default=["group_values", "group", "pair", "single"], help="the first is the base system")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", type=Path, default=None, help="Write OUTPUT.md and OUTPUT.json")
    a = parser.parse_args()
    train_file = a.data / SPLIT_FILES[a.split]
    offers = read_offers(dev_jsonl(train_file, a.out / f"dev_{a.split}.jsonl"))
    runs: Dict[Tuple[str, int], Proposals] = {}
    missing = []
    for system in a.systems:
        for seed in a.seeds:
            target = run_dir(a.out, a.split, seed, system)
            if len(models_of(target)) == 0:
                missing.append(f"{system} seed {seed}")
                continue
            runs[(system, seed)] = proposals_of(target, offers)
            print(f"predicted: {system} seed {seed}", flush=True)

    def micro(predictions) -> Dict[str, float]:
        return score_offers(offers, predictions)["overall"]["micro"]

    def voted(keys, min_votes) -> List[Dict[str, str]]:
        return [vote_values([runs[k][i] for k in keys], min_votes) for i in range(len(offers))]

    rows = []
    base = a.systems[0]
    for n in range(1, len(a.systems) + 1):
        systems = a.systems[:n]
        keys = [k for k in runs if k[0] in systems]
        if not keys:
            continue
        for min_votes in range(1, len(keys) + 1):
            rows.append({"idea": "vote", "systems": systems, "models": len(keys), "min_votes": min_votes, **micro(voted(keys, min_votes))})
    known = training_values(train_file)
    base_keys = [k for k in runs if k[0] == base]
    if base_keys:
        majority = voted(base_keys, None)
        for mode in ("extend", "overlap"):
            rows.append({"idea": f"snap ({mode})", "systems": [base], "models": len(base_keys), "min_votes": len(base_keys) // 2 + 1, **micro(snap(offers, majority, known, mode))})
    lines = [
        f"Dev rows of `{train_file.name}` ({len(offers)} offers), micro-P/R/F1 x100 of ExtractGPT's attribute-value metric. "
        f"Command: `python benchmarks/dev_value_ideas.py --split {a.split} --systems {' '.join(a.systems)} --seeds {' '.join(map(str, a.seeds))}`."
        + (f" Runs not found: {', '.join(missing)}." if missing else ""),
        "",
        "| idea | systems | models | min votes | micro-P | micro-R | micro-F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['idea']} | {' + '.join(r['systems'])} | {r['models']} | {r['min_votes']} | {100 * r['precision']:.1f} | {100 * r['recall']:.1f} | {100 * r['f1']:.1f} |")
    text = "\n".join(lines)
    print(text)
    if a.output:
        a.output.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{a.output}.md").write_text(text + "\n", encoding="utf-8")
        Path(f"{a.output}.json").write_text(json.dumps({"rows": rows, "missing": missing}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
