"""Incomplete labels on OA-Mine (issue 16), where the truth is known: remove 0%, 30% or 50% of the gold spans of every
vertical's training docs (``drop-spans``, removal seed = training seed; dev and test untouched), train all 10
verticals jointly (``train-group``, the shipped pair.cfg) with the full-label loss (removed values are ``O``) and with
the partial-label loss (``--partial-labels absent``: an unlabelled token may be ``O`` or a value of an attribute the
doc no longer lists), score every vertical once on its test split. Tables (Markdown, JSON): macro-P/R/F1, span
P/R/F1 and, per system, the ExtractGPT attribute-value metric on ``--test-jsonl`` (micro over all verticals).

    OMP_NUM_THREADS=1 python benchmarks/partial_labels.py --corpus corpus --out training/partial_labels \\
        --seeds 0 1 2 --test-jsonl assets/oa-mine/test.jsonl --output docs/results/partial_labels
"""
import argparse
import shutil
import sys
import time
from pathlib import Path
from statistics import mean
from typing import Dict, List, Optional

import srsly

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_results import VERTICALS, mean_sd_text, run, slug  # noqa: E402

LOSSES = ("full-label", "partial-label")
SPAN_METRICS = (("macro_p", "macro-P"), ("macro_r", "macro-R"), ("macro_f1", "macro-F1"), ("ents_p", "span P"), ("ents_r", "span R"), ("ents_f", "span F1"))
AV_METRICS = (("precision", "AV micro-P"), ("recall", "AV micro-R"), ("f1", "AV micro-F1"))


def corpus_for(corpus: Path, out: Path, rate: float, seed: int, vertical: str) -> Path:
    """The vertical's folder with ``rate`` of its training spans removed (made once with ``drop_spans``)."""
    if rate == 0:
        return corpus / slug(vertical)
    from spacy_mtlave.training.subsample import drop_spans

    target = out / "corpus" / f"r{rate:g}" / f"seed{seed}" / slug(vertical)
    if not (target / "train.spacy").is_file():
        drop_spans(corpus / slug(vertical), target, rate, seed=seed)
    return target


def run_dir(out: Path, rate: float, seed: int, loss: str) -> Path:
    return out / f"r{rate:g}" / f"seed{seed}" / loss


def plan(corpus: Path, out: Path, rates: List[float], seeds: List[int], vectors: Optional[Path], losses=LOSSES):
    runs = []
    for seed in seeds:
        for rate in rates:
            folders = [str(corpus_for(corpus, out, rate, seed, v)) for v in VERTICALS]
            for loss in losses:
                target = run_dir(out, rate, seed, loss)
                args = ["train-group", *folders, str(target), "--seed", str(seed), "--verticals", ",".join(VERTICALS)]
                args += ["--vectors", str(vectors)] if vectors else []
                if loss.startswith("partial-label"):
                    args += ["--partial-labels", "absent"]
                if loss.startswith("partial-label-o"):  # mixed with the full-label loss, weight w (unlabelled_o_weight)
                    args += [arg for v in VERTICALS for arg in (f"--components.tagger_{slug(v)}.unlabelled_o_weight", loss[len("partial-label-o"):])]
                runs.append((target, args))
    return runs


def scores_of(target: Path, test_jsonl: Optional[Path]) -> Dict:
    """Test scores of a finished run: per vertical (benchmark metrics) and the attribute-value metric (cached)."""
    cache = target / "test_scores.json"
    if cache.is_file() and (test_jsonl is None or "attribute_values" in srsly.read_json(cache)):
        return srsly.read_json(cache)
    if not (target / "run.json").is_file():
        return {}
    info = srsly.read_json(target / "run.json")
    models = {vertical: (target / paths["model"]).resolve() for vertical, paths in info["verticals"].items()}
    out: Dict = srsly.read_json(cache) if cache.is_file() else {}
    if "verticals" not in out:
        from spacy_mtlave.evaluation.evaluate import evaluate_pipeline

        out["verticals"] = {}
        for vertical, paths in info["verticals"].items():
            scores = evaluate_pipeline(models[vertical], (target / paths["corpus"]).resolve() / "test.spacy")
            out["verticals"][vertical] = {key: scores.get(key) for key, _ in SPAN_METRICS}
    if test_jsonl is not None and "attribute_values" not in out:
        from spacy_mtlave.evaluation.attribute_values import evaluate_attribute_values

        av = evaluate_attribute_values(models, test_jsonl)
        out["attribute_values"] = {key: av["overall"]["micro"][key] for key, _ in AV_METRICS}
    srsly.write_json(cache, out)
    return out


def load_with_floor(model: Path, floor: float):
    """The pipeline with every ``ave_tagger``'s ``min_confidence`` set to ``floor``."""
    import spacy

    from spacy_mtlave.pipeline.tagger import set_min_confidence

    nlp = spacy.load(model)
    set_min_confidence(nlp, floor)
    return nlp


def dev_floor_scores(target: Path, grid: List[float]) -> Dict[str, float]:
    """{floor: mean dev span F1 over the verticals} of a finished run (one pipeline load per vertical; cached)."""
    cache = target / "dev_floors.json"
    out: Dict[str, float] = srsly.read_json(cache) if cache.is_file() else {}
    todo = [f for f in grid if f"{f:g}" not in out]
    if not todo or not (target / "run.json").is_file():
        return {k: v for k, v in out.items() if float(k) in grid}
    from spacy_mtlave.evaluation.evaluate import evaluate_pipeline
    from spacy_mtlave.pipeline.tagger import set_min_confidence

    info = srsly.read_json(target / "run.json")
    per_floor: Dict[str, List[float]] = {f"{f:g}": [] for f in todo}
    for vertical, paths in info["verticals"].items():
        nlp = load_with_floor((target / paths["model"]).resolve(), 0.0)
        dev = (target / paths["corpus"]).resolve() / "dev.spacy"
        for floor in todo:
            set_min_confidence(nlp, floor)
            per_floor[f"{floor:g}"].append(evaluate_pipeline(nlp, dev)["ents_f"])
    out.update({k: mean(v) for k, v in per_floor.items()})
    srsly.write_json(cache, out)
    return {k: v for k, v in out.items() if float(k) in grid}


def floor_scores_of(target: Path, floor: float, test_jsonl: Optional[Path]) -> Dict:
    """Like ``scores_of``, with every tagger's ``min_confidence`` at ``floor`` (cached per floor)."""
    if floor == 0:
        return scores_of(target, test_jsonl)
    cache = target / f"test_scores_floor{floor:g}.json"
    if cache.is_file():
        return srsly.read_json(cache)
    if not (target / "run.json").is_file():
        return {}
    from spacy_mtlave.evaluation.attribute_values import evaluate_attribute_values
    from spacy_mtlave.evaluation.evaluate import evaluate_pipeline

    info = srsly.read_json(target / "run.json")
    out: Dict = {"verticals": {}, "min_confidence": floor}
    nlps = {}
    for vertical, paths in info["verticals"].items():
        nlps[vertical] = load_with_floor((target / paths["model"]).resolve(), floor)
        scores = evaluate_pipeline(nlps[vertical], (target / paths["corpus"]).resolve() / "test.spacy")
        out["verticals"][vertical] = {key: scores.get(key) for key, _ in SPAN_METRICS}
    if test_jsonl is not None:
        av = evaluate_attribute_values(nlps, test_jsonl)
        out["attribute_values"] = {key: av["overall"]["micro"][key] for key, _ in AV_METRICS}
    srsly.write_json(cache, out)
    return out


def choose_floors(out: Path, rates: List[float], seeds: List[int], grid: List[float], losses) -> Dict[str, Dict[str, float]]:
    """{rate: {loss: the floor with the best mean dev span F1 over the seeds' runs}} (runs with a model only)."""
    chosen: Dict[str, Dict[str, float]] = {}
    for rate in rates:
        for loss in losses:
            sweeps = [dev_floor_scores(run_dir(out, rate, seed, loss), grid) for seed in seeds]
            sweeps = [s for s in sweeps if len(s) == len(grid)]
            if sweeps:
                best = max(grid, key=lambda f: (mean(s[f"{f:g}"] for s in sweeps), -f))
                chosen.setdefault(f"{rate:g}", {})[loss] = best
    return chosen


def collect(out: Path, rates: List[float], seeds: List[int], test_jsonl: Optional[Path], losses=LOSSES, floors: Optional[Dict] = None) -> Dict:
    """results[rate][loss][metric] = per seed, the mean over the 10 verticals (attribute values: micro overall); with
    ``floors`` ({rate: {loss: floor}}, chosen on dev) also ``<loss>, min_confidence <floor>`` rows."""
    results: Dict = {}
    for rate in rates:
        names = [(loss, loss, 0.0) for loss in losses]
        names += [(f"{loss}, min_confidence {f:g} (dev)", loss, f) for loss, f in (floors or {}).get(f"{rate:g}", {}).items() if f > 0]
        for name, loss, floor in names:
            cell = results.setdefault(f"{rate:g}", {}).setdefault(name, {})
            for seed in seeds:
                scores = floor_scores_of(run_dir(out, rate, seed, loss), floor, test_jsonl)
                if not scores:
                    continue
                for key, _ in SPAN_METRICS:
                    values = [v[key] for v in scores["verticals"].values() if v.get(key) is not None]
                    cell.setdefault(key, []).append(100 * mean(values))
                for key, _ in AV_METRICS:
                    if key in scores.get("attribute_values", {}):
                        cell.setdefault(f"av_{key}", []).append(100 * scores["attribute_values"][key])
    return results


def table(results: Dict) -> str:
    columns = list(SPAN_METRICS) + [(f"av_{k}", label) for k, label in AV_METRICS]
    lines = ["| removed spans | loss | n seeds | " + " | ".join(label for _, label in columns) + " |", "|---|---|---|" + "---|" * len(columns)]
    for rate, cells in results.items():
        for loss, cell in cells.items():
            n = max((len(v) for v in cell.values()), default=0)
            lines.append(f"| {100 * float(rate):g}% | {loss} | {n} | " + " | ".join(mean_sd_text(cell.get(key, [])) for key, _ in columns) + " |")
    return "\n".join(lines)


def recovered(results: Dict, rate: str, key: str, loss: str = "partial-label") -> Optional[float]:
    """Share of the recall the full-label loss lost at ``rate`` (vs 0%) that ``loss`` wins back."""
    base = results.get("0", {}).get("full-label", {}).get(key)
    full = results.get(rate, {}).get("full-label", {}).get(key)
    partial = results.get(rate, {}).get(loss, {}).get(key)
    if not (base and full and partial) or mean(base) <= mean(full):
        return None
    return (mean(partial) - mean(full)) / (mean(base) - mean(full))


def flipkart_summary(runs: Dict[str, Path], dev: Path) -> str:
    """Distant labels (Flipkart specifications): on the held-back docs, how many values each tagger finds, and how
    many of them are the spec's values (the labels are incomplete, so a found value outside them may still be
    right)."""
    import spacy
    from spacy.tokens import DocBin

    from spacy_mtlave.evaluation.attribute_values import models_from_run

    lines = ["| training loss | held-back docs | spec values in text | values found | found = a spec value | spec values found (recall vs spec) | found outside the spec |",
             "|---|---|---|---|---|---|---|"]
    for name, run_dir in runs.items():
        if not (run_dir / "run.json").is_file():
            continue
        nlp = spacy.load(next(iter(models_from_run(run_dir).values())))
        gold = list(DocBin().from_disk(dev).get_docs(nlp.vocab))
        found = spec = hits = 0
        for ref, doc in zip(gold, nlp.pipe(d.text for d in gold)):
            want = {(e.start_char, e.end_char, e.label_) for e in ref.ents}
            got = {(e.start_char, e.end_char, e.label_) for e in doc.ents}
            found, spec, hits = found + len(got), spec + len(want), hits + len(got & want)
        lines.append(f"| {name} | {len(gold)} | {spec} | {found} | {hits} | {100 * hits / max(spec, 1):.1f}% | {found - hits} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--out", type=Path, default=Path("training/partial_labels"))
    parser.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.3, 0.5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), help="full-label, partial-label, partial-label-o<w> (w: unlabelled_o_weight)")
    parser.add_argument("--vectors", type=Path, default=Path("vectors/glove-6b-50d"))
    parser.add_argument("--test-jsonl", type=Path, default=None, help="OA-Mine test.jsonl for the attribute-value metric")
    parser.add_argument("--output", type=Path, default=None, help="Write OUTPUT.md and OUTPUT.json")
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument("--floor-grid", type=float, nargs="*", default=[], help="min_confidence values to choose from on dev, per removal rate and loss (adds rows at the chosen floor)")
    parser.add_argument("--flipkart", type=Path, default=None, help="Folder with full-label/ and partial-label/ train runs on a specs corpus")
    parser.add_argument("--flipkart-dev", type=Path, default=Path("corpus-flipkart/clothing/dev.spacy"))
    a = parser.parse_args()
    if not a.collect_only:
        todo = plan(a.corpus, a.out, a.rates, a.seeds, a.vectors, a.losses)
        for i, job in enumerate(todo, 1):
            target, code, seconds = run(job)
            print(f"[{i}/{len(todo)}] {target} exit {code} {seconds:.0f}s {time.strftime('%H:%M:%S')}", flush=True)
            if code == 0:
                shutil.rmtree(target / "joint", ignore_errors=True)  # the per-vertical pipelines are what is scored
                scores_of(target, a.test_jsonl)
    floors = choose_floors(a.out, a.rates, a.seeds, a.floor_grid, a.losses) if a.floor_grid else None
    results = collect(a.out, a.rates, a.seeds, a.test_jsonl, a.losses, floors)
    text = table(results)
    if floors:
        text += "\n\nmin_confidence chosen on dev (best mean dev span F1 over the seeds' runs, grid " + ", ".join(f"{f:g}" for f in a.floor_grid) + "): " + "; ".join(
            f"{100 * float(rate):g}% {loss} {f:g}" for rate, cells in floors.items() for loss, f in cells.items())
    notes = []
    for rate in results:
        if rate == "0":
            continue
        for loss in [name for name in results[rate] if name.startswith("partial-label")]:
            for key, label in (("ents_r", "span recall"), ("macro_r", "macro-R"), ("av_recall", "attribute-value recall")):
                share = recovered(results, rate, key, loss)
                if share is not None:
                    notes.append(f"- {100 * float(rate):g}% removed: {loss} wins back {100 * share:.0f}% of the {label} the full-label loss lost")
    text = text + ("\n\n" + "\n".join(notes) if notes else "")
    if a.flipkart is not None:
        text += "\n\nFlipkart (distant labels), held-back docs:\n\n" + flipkart_summary({loss: a.flipkart / loss for loss in LOSSES}, a.flipkart_dev)
    print(text)
    if a.output:
        a.output.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{a.output}.md").write_text(text + "\n")
        srsly.write_json(f"{a.output}.json", results)


if __name__ == "__main__":
    main()
