"""Our taggers against the published LLM runs of ExtractGPT on the OA-Mine test file, with their attribute-value
metric (issue 15). Trains every system of ``--systems`` on the large (train.jsonl) and/or small (train_0.2.jsonl)
training split for each seed, scores each run with ``evaluate --metric attribute-values`` on ``--eval`` (``dev``: the
BENCHMARK.md dev rows of the training file, for choosing; ``test``: the test file, once per final system), measures
inference CPU-seconds per 1,000 titles and the training time, and writes the comparison table (Markdown + JSON).

    OMP_NUM_THREADS=1 python benchmarks/llm_comparison.py --data ../shared/data/oa-mine --out training/llm \\
        --systems group group_product --splits large small --seeds 0 1 2 --eval test --output docs/results/llm_comparison

Corpora are converted once per split and tokenizer under ``OUT/corpus``; runs go to ``OUT/<split>/seed<N>/<system>``.
``--ensemble-systems group_values+group_minilm:3`` scores the seeds of both systems voting (a value kept with >= 3
votes); ``--previous-json`` keeps an earlier tabulation's rows whose runs are not on this machine.
"""
import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import srsly

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_results import PAIRS, VERTICALS, mean_sd_text, run, slug  # noqa: E402

SPLIT_FILES = {"large": "train.jsonl", "small": "train_0.2.jsonl"}
PRODUCT = ["--nlp.tokenizer", '{"@tokenizers":"spacy_mtlave.product_tokenizer.v1"}']
# name -> (kind, tokenizer, extra arguments); kind: single (one run per vertical), pair (the 5 benchmark pairs), group
SYSTEMS = {
    "single": ("single", "default", []),
    "pair": ("pair", "default", []),
    "group": ("group", "default", []),
    "group_product": ("group", "product", PRODUCT),
    "group_product_long": ("group", "product", PRODUCT + ["--training.max_epochs", "80"]),
    "group_values": ("group", "product", ["--config", "configs/pair_values.cfg"]),
    "group_minilm": ("group", "default", ["--config", "configs/pair_trf.cfg"]),
    "group_minilm_values": ("group", "product", ["--config", "configs/pair_trf_values.cfg"]),
}
LABELS = {
    "single": "single-task, GloVe (`train`, one per vertical)",
    "pair": "pair, GloVe, coupling (`train-pair`, the 5 benchmark pairs)",
    "group": "all 10 verticals, GloVe, coupling (`train-group`, default)",
    "group_product": "all 10 verticals, GloVe, coupling, product tokenizer",
    "group_product_long": "same, 80 epochs",
    "group_values": "all 10 verticals, GloVe, coupling, product tokenizer, value-aware emissions (`pair_values.cfg`)",
    "group_minilm": "all 10 verticals, MiniLM, coupling (`train-group --config pair_trf.cfg`)",
    "group_minilm_values": "all 10 verticals, MiniLM, coupling, product tokenizer, value-aware emissions (`pair_trf_values.cfg`)",
}
for _name, _label in list(LABELS.items()):
    for _votes in (1, 2, 3):
        LABELS[f"{_name}_ensemble3_votes{_votes}"] = f"{_label}; the 3 seeds' runs voting, a value kept with >= {_votes} votes"
    for _floor in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        LABELS[f"{_name}_floor{_floor:g}"] = f"{_label}; min_confidence {_floor:g} (chosen on dev)"
PUBLISHED = [
    ("GPT-4-0613, 10 shots by semantic similarity, JSON schema with example values, shuffled ensemble", "large", "85.26", "81.68", "83.43"),
    ("same, without the ensemble", "large", "-", "-", "82.16"),
    ("same ensemble", "small", "-", "-", "81.97"),
    ("GPT-3.5-turbo-0613, 10 shots", "large", "-", "-", "74.01"),
    ("dictionary lookup of training values", "large", "-", "-", "53.5"),
]


def rows_with_dev_flag(train_file: Path, every: int = 10) -> Iterator[Tuple[str, bool]]:
    """(line, is a dev row) for the records of an attribute-value training file: per category, in file order, the
    BENCHMARK.md rule of ``convert`` (``is_dev_index``)."""
    from spacy_mtlave.convert import is_dev_index

    seen: Dict[str, int] = {}
    for line in train_file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        category = json.loads(line)["category"]
        index = seen.get(category, 0)
        seen[category] = index + 1
        yield line, is_dev_index(index, every)


def dev_jsonl(train_file: Path, target: Path, every: int = 10) -> Path:
    """The dev rows of an attribute-value training file (``rows_with_dev_flag``) as a JSONL file for the
    attribute-value metric."""
    lines = [line for line, is_dev in rows_with_dev_flag(train_file, every) if is_dev]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def corpus(data: Path, out: Path, split: str, tokenizer: str) -> Path:
    """``OUT/corpus/<split>_<tokenizer>/<vertical>/{train,dev,test}.spacy`` (converted once)."""
    from spacy_mtlave.convert import convert

    target = out / "corpus" / f"{split}_{tokenizer}"
    if not (target / "stats.json").is_file():
        convert(data / SPLIT_FILES[split], target, "attribute-values", split="train", dev_every=10, tokenizer=tokenizer)
        convert(data / "test.jsonl", target, "attribute-values", split="test", tokenizer=tokenizer)
    return target


def run_dir(out: Path, split: str, seed: int, system: str) -> Path:
    return out / split / f"seed{seed}" / system


def plan(data: Path, out: Path, systems: List[str], splits: List[str], seeds: List[int], vectors: Optional[Path]):
    """(output dir, command) per training run; a single or pair system has one run per vertical or pair."""
    vec = ["--vectors", str(vectors)] if vectors else []
    runs = []
    for seed in seeds:
        for split in splits:
            for system in systems:
                kind, tokenizer, extra = SYSTEMS[system]
                folder = corpus(data, out, split, tokenizer)
                target = run_dir(out, split, seed, system)
                common = ["--seed", str(seed), *vec, *extra]
                if kind == "group":
                    runs.append((target, ["train-group", *(str(folder / slug(v)) for v in VERTICALS), str(target), *common]))
                elif kind == "pair":
                    for v1, v2 in PAIRS:
                        runs.append((target / f"{slug(v1)}+{slug(v2)}", ["train-pair", str(folder / slug(v1)), str(folder / slug(v2)), str(target / f"{slug(v1)}+{slug(v2)}"), *common]))
                else:
                    for v in VERTICALS:
                        runs.append((target / slug(v), ["train", str(folder / slug(v)), str(target / slug(v)), *common]))
    return runs


def ensemble_specs(specs: List[str], votes: List[int]) -> List[Tuple[str, List[int]]]:
    """(systems, min-votes settings) per ``--ensemble-systems`` entry: ``A`` or ``A+B`` with ``--ensemble-votes``, or
    ``A+B:K`` with its own setting K (so a test run scores only the setting chosen on dev)."""
    out = []
    for spec in specs:
        systems, _, own = spec.partition(":")
        if own and not own.isdigit():
            raise ValueError(f"--ensemble-systems {spec}: the part after ':' must be a number of votes")
        out.append((systems, [int(own)] if own else list(votes)))
    return out


def ensemble_members(out: Path, split: str, spec: str, seeds: List[int]) -> List[Path]:
    """The run folders that vote in an ensemble: every seed of one system, or of each system of ``A+B``."""
    return [run_dir(out, split, seed, system) for system in spec.split("+") for seed in seeds]


def models_of(target: Path) -> Dict[str, Path]:
    """{vertical: pipeline} of a system's run folder (one run.json, or one per vertical / pair below it)."""
    from spacy_mtlave.evaluation.attribute_values import models_from_run

    infos = [target] if (target / "run.json").is_file() else sorted(p.parent for p in target.glob("*/run.json"))
    models: Dict[str, Path] = {}
    for folder in infos:
        models.update(models_from_run(folder))
    return models


def score(target: Path, eval_file: Path, name: str, floor: float = 0.0) -> Optional[Dict]:
    """Attribute-value scores of a finished system on ``eval_file`` with the inference cost (cached per file and
    ``min_confidence`` floor)."""
    cache = target / (f"av_{name}.json" if floor == 0 else f"av_{name}_floor{floor:g}.json")
    if cache.is_file():
        return srsly.read_json(cache)
    models = models_of(target)
    if len(models) < len(VERTICALS):
        return None
    import spacy

    from spacy_mtlave.evaluation.attribute_values import evaluate_attribute_values
    from spacy_mtlave.pipeline.tagger import set_min_confidence

    nlps = {vertical: spacy.load(path) for vertical, path in models.items()}
    for nlp in nlps.values():
        set_min_confidence(nlp, floor)
    start = time.process_time()
    scores = evaluate_attribute_values(nlps, eval_file)
    seconds = time.process_time() - start  # prediction only (pipelines loaded before)
    result = {
        "overall": scores["overall"],
        "per_category": {c: s["micro"] for c, s in scores["per_category"].items()},
        "cpu_seconds_per_1000_titles": 1000 * seconds / scores["n_offers"],
        "train_seconds": sum(srsly.read_json(p)["seconds"] for p in target.rglob("train_time.json")) or None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    srsly.write_json(cache, result)
    return result


def score_ensemble(targets: List[Path], eval_file: Path, name: str, min_votes: int, cache: Path) -> Optional[Dict]:
    """Attribute-value scores of the seeds' runs of one system voting on each value (``evaluate_attribute_values``
    with a list of pipelines per category; ``min_votes`` of them must propose a value), cached in ``cache``."""
    if cache.is_file():
        return srsly.read_json(cache)
    runs = [models_of(t) for t in targets]
    if len(runs) < 2 or any(len(r) < len(VERTICALS) for r in runs):
        return None
    from spacy_mtlave.evaluation.attribute_values import evaluate_attribute_values

    scores = evaluate_attribute_values({v: [r[v] for r in runs] for v in runs[0]}, eval_file, min_votes=min_votes)
    seconds = scores["predict_cpu_seconds"]  # prediction by every member, pipelines loaded
    result = {
        "overall": scores["overall"],
        "per_category": {c: s["micro"] for c, s in scores["per_category"].items()},
        "cpu_seconds_per_1000_titles": 1000 * seconds / scores["n_offers"],
        "train_seconds": sum(srsly.read_json(p)["seconds"] for t in targets for p in t.rglob("train_time.json")) or None,
        "members": [str(t) for t in targets],
        "min_votes": min_votes,
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(cache, result)
    return result


def error_breakdown(targets: List[Path], test_file: Path, train_file: Path, min_votes: Optional[int] = None) -> Dict[str, int]:
    """Where the slots of a run (or of several runs voting, ``min_votes`` as in ``vote_values``) go on the test file:
    VC, VN (nothing found), VW split into boundary errors (the prediction and a gold value contain one another) and
    other wrong values; and how many of the missed or wrong slots have gold values never seen for that attribute in
    the training file (unseen values)."""
    from spacy_mtlave.evaluation.attribute_values import predict_offers, read_offers, slot_outcome

    seen: Dict[tuple, set] = {}
    for offer in read_offers(train_file):
        for attribute, values in offer.gold.items():
            seen.setdefault((offer.category, attribute), set()).update(values or [])
    runs = [models_of(target) for target in targets]
    for target, models in zip(targets, runs):
        if not models:
            raise ValueError(f"{target}: no run.json of a finished training run")
    ensembles = {vertical: [models[vertical] for models in runs if vertical in models] for vertical in runs[0]}
    offers = [o for o in read_offers(test_file) if o.category in ensembles]  # a category without a model is not broken down
    predictions, _ = predict_offers(ensembles, offers, min_votes=min_votes)
    counts = {"VC": 0, "VN": 0, "VW boundary": 0, "VW other": 0, "NV": 0, "missed or wrong, unseen value": 0}
    for offer, predicted in zip(offers, predictions):
        for attribute, gold in offer.gold.items():
            outcome = slot_outcome(gold, predicted.get(attribute))
            if outcome == "VW":
                guess = predicted[attribute]
                outcome = "VW boundary" if any(guess in g or g in guess for g in gold) else "VW other"
            if outcome in counts:
                counts[outcome] += 1
            if outcome in ("VN", "VW boundary", "VW other") and not set(gold) & seen.get((offer.category, attribute), set()):
                counts["missed or wrong, unseen value"] += 1
    return counts


def with_previous(results: Dict, previous: Dict) -> Tuple[Dict, List[str]]:
    """This run's rows plus those of a previous ``--output`` JSON (``{"system|split": [run, ...]}``) for every (system,
    split) this run did not score, and the keys read back. Rows are ordered by split (large first), within a split the
    trained systems (previous order, then new ones) before the seeds' votes and floors derived from them."""
    merged = {tuple(key.split("|")): runs for key, runs in previous.items()}
    read_back = [key for key in previous if tuple(key.split("|")) not in results]
    merged.update(results)
    splits = list(SPLIT_FILES)
    order = sorted(merged, key=lambda k: (splits.index(k[1]) if k[1] in splits else len(splits), k[0] not in SYSTEMS))
    return {k: merged[k] for k in order}, read_back


def label_of(name: str) -> str:
    """The table's description of a row key: a system, a derived row (floor, one system's seeds voting) or several
    systems' seeds voting together (``A+B_ensembleN_votesK``)."""
    if name in LABELS:
        return LABELS[name]
    spec, _, votes = name.rpartition("_votes")
    systems, _, n = spec.rpartition("_ensemble")
    if votes and n and "+" in systems:
        return " + ".join(LABELS.get(s, s) for s in systems.split("+")) + f"; their {n} runs (seeds x systems) voting, a value kept with >= {votes} votes"
    return name


def table(results: Dict) -> str:
    """The comparison (published rows first) and the per-category micro-F1 of our systems."""
    lines = ["| system | training split | n seeds | micro-P | micro-R | micro-F1 | CPU s / 1,000 titles | training time (s) |", "|---|---|---|---|---|---|---|---|"]
    for name, split, p, r, f in PUBLISHED:
        lines.append(f"| {name} (ExtractGPT, published) | {split} | - | {p} | {r} | {f} | - | - |")
    per_category = ["", "| system | split | " + " | ".join(VERTICALS) + " |", "|---|---|" + "---|" * len(VERTICALS)]
    for (system, split), runs in results.items():
        m = [r["overall"]["micro"] for r in runs]
        cost = [r["cpu_seconds_per_1000_titles"] for r in runs]
        train = [r["train_seconds"] for r in runs if r.get("train_seconds")]
        lines.append(
            f"| **{label_of(system)}** | {split} | {len(runs)} | {mean_sd_text([100 * x['precision'] for x in m])} | "
            f"{mean_sd_text([100 * x['recall'] for x in m])} | {mean_sd_text([100 * x['f1'] for x in m])} | {mean_sd_text(cost, 0)} | {mean_sd_text(train, 0)} |"
        )
        per_category.append(f"| {system} | {split} | " + " | ".join(mean_sd_text([100 * r["per_category"][v]["f1"] for r in runs if v in r["per_category"]]) for v in VERTICALS) + " |")
    return "\n".join(lines + per_category)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/oa-mine"))
    parser.add_argument("--out", type=Path, default=Path("training/llm"))
    parser.add_argument("--systems", nargs="+", default=["group", "group_product"], choices=sorted(SYSTEMS))
    parser.add_argument("--splits", nargs="+", default=["large"], choices=sorted(SPLIT_FILES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--vectors", type=Path, default=Path("vectors/glove-6b-50d"))
    parser.add_argument("--eval", choices=("dev", "test"), default="dev", help="dev for choosing; test once per final system")
    parser.add_argument("--output", type=Path, default=None, help="Write OUTPUT.md and OUTPUT.json")
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument("--previous-json", type=Path, default=None, help="Keep the rows of a previous --output JSON for every system and split not scored by this run (when its runs are gone)")
    parser.add_argument("--errors", action="store_true", help="Also break the test slots down by error kind: each system's first seed, and each ensemble")
    parser.add_argument("--floor-grid", type=float, nargs="*", default=[], help="min_confidence values; per system the one with the best mean dev micro-F1 over the seeds is also scored on --eval (a row)")
    parser.add_argument("--ensemble-systems", nargs="*", default=None, help="Systems whose seeds vote (default: every system); A+B: the seeds of A and of B vote together; A+B:K: only with K votes (else --ensemble-votes)")
    parser.add_argument("--ensemble-votes", type=int, nargs="*", default=[], help="Also score each system's seeds voting on each value, for each of these min-votes settings")
    a = parser.parse_args()
    try:
        specs = ensemble_specs(a.systems if a.ensemble_systems is None else a.ensemble_systems, a.ensemble_votes)
    except ValueError as error:
        parser.error(str(error))
    unknown = sorted({s for spec, _ in specs for s in spec.split("+")} - set(SYSTEMS))
    if unknown:
        parser.error(f"--ensemble-systems: unknown system(s) {', '.join(unknown)} (known: {', '.join(SYSTEMS)})")
    if not a.collect_only:
        todo = plan(a.data, a.out, a.systems, a.splits, a.seeds, a.vectors)
        for i, job in enumerate(todo, 1):
            target, code, seconds = run(job)
            if code == 0 and seconds:
                srsly.write_json(target / "train_time.json", {"seconds": seconds})
                shutil.rmtree(target / "joint" / "model-last", ignore_errors=True)
            print(f"[{i}/{len(todo)}] {target} exit {code} {seconds:.0f}s {time.strftime('%H:%M:%S')}", flush=True)
    results: Dict = {}
    for split in a.splits:
        eval_file = a.data / "test.jsonl" if a.eval == "test" else dev_jsonl(a.data / SPLIT_FILES[split], a.out / f"dev_{split}.jsonl")
        for system in a.systems:
            for seed in a.seeds:
                scores = score(run_dir(a.out, split, seed, system), eval_file, a.eval)
                if scores is not None:
                    results.setdefault((system, split), []).append(scores)
            if a.floor_grid:
                dev_file = dev_jsonl(a.data / SPLIT_FILES[split], a.out / f"dev_{split}.jsonl")
                sweep = {f: [score(run_dir(a.out, split, seed, system), dev_file, "dev", f) for seed in a.seeds] for f in a.floor_grid}
                sweep = {f: [r["overall"]["micro"]["f1"] for r in runs if r is not None] for f, runs in sweep.items()}
                if all(sweep.values()) and len({len(v) for v in sweep.values()}) == 1:
                    best = max(a.floor_grid, key=lambda f: (sum(sweep[f]) / len(sweep[f]), -f))
                    print(f"{system} {split}: min_confidence chosen on dev {best:g} (" + ", ".join(f"{f:g}: {100 * sum(v) / len(v):.1f}" for f, v in sweep.items()) + ")")
                    if best > 0:
                        for seed in a.seeds:
                            scores = score(run_dir(a.out, split, seed, system), eval_file, a.eval, best)
                            if scores is not None:
                                results.setdefault((f"{system}_floor{best:g}", split), []).append(dict(scores, min_confidence=best))
        for spec, votes_list in specs:
            targets = ensemble_members(a.out, split, spec, a.seeds)
            for votes in votes_list:
                cache = a.out / split / "ensembles" / f"{spec}_seeds{'-'.join(map(str, a.seeds))}_votes{votes}_{a.eval}.json"
                scores = score_ensemble(targets, eval_file, a.eval, votes, cache)
                if scores is not None:
                    results.setdefault((f"{spec}_ensemble{len(targets)}_votes{votes}", split), []).append(scores)
    text = f"Scored on: {a.eval}\n\n"
    if a.previous_json:
        results, read_back = with_previous(results, srsly.read_json(a.previous_json))
        if read_back:
            text += f"Read back from `{a.previous_json}` (runs not scored by this invocation): {', '.join(read_back)}\n\n"
    text += table(results)
    if a.errors:
        rows = ["", "| system | split | " + " | ".join(["VC", "VN", "VW boundary", "VW other", "NV", "missed or wrong, unseen value"]) + " |", "|---|---|" + "---|" * 6]
        for split in a.splits:
            for system in a.systems:
                target = run_dir(a.out, split, a.seeds[0], system)
                if models_of(target):
                    counts = error_breakdown([target], a.data / "test.jsonl", a.data / SPLIT_FILES[split])
                    rows.append(f"| {system} (seed {a.seeds[0]}) | {split} | " + " | ".join(str(v) for v in counts.values()) + " |")
            for spec, votes_list in specs:
                members = ensemble_members(a.out, split, spec, a.seeds)
                if len(members) > 1 and all(models_of(m) for m in members):
                    for votes in votes_list:
                        counts = error_breakdown(members, a.data / "test.jsonl", a.data / SPLIT_FILES[split], votes)
                        rows.append(f"| {spec}, {len(members)} runs, >= {votes} votes | {split} | " + " | ".join(str(v) for v in counts.values()) + " |")
        text += "\n" + "\n".join(rows)
    print(text)
    if a.output:
        a.output.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{a.output}.md").write_text(text + "\n")
        srsly.write_json(f"{a.output}.json", {f"{s}|{sp}": v for (s, sp), v in results.items()})


if __name__ == "__main__":
    main()
