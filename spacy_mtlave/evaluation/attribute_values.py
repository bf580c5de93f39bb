"""The attribute-value metric of ExtractGPT (Brinkmann, Shraga and Bizer), on the original attribute-value JSONL.

One *slot* per (offer, attribute listed in the offer's gold record). Gold values are the record's value strings,
stripped; ``"n/a"`` means the attribute is absent. A system predicts at most one string per slot: here the text of
the most confident span of that label (``span._.confidence``; ties: the earlier span). Outcomes:
NN gold absent, nothing predicted; NV gold absent, a value predicted; VN gold present, nothing predicted;
VC the prediction equals one of the gold values exactly; VW any other prediction.
P = VC / (NV + VC + VW), R = VC / (VN + VC + VW), F1 their harmonic mean; micro over all slots, macro the mean over
(category, attribute) pairs that have a slot other than NN (their protocol). Attributes predicted for an offer whose
record does not list them are not counted; ``strict`` counts each as NV (one extra slot)."""
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from ..convert.errors import ConvertError
from ..convert.records import get_field, get_text, iter_jsonl
from ..json_input import type_name
from .value_vote import vote_values

OUTCOMES = ("NN", "NV", "VN", "VC", "VW")
ABSENT = "n/a"


@dataclass
class Offer:
    """One test record: its line, text, category and gold values per listed attribute (None: absent)."""

    line: int
    text: str
    category: str
    gold: Dict[str, Optional[List[str]]]


def read_offers(path: Path, text_field: str = "input") -> List[Offer]:
    """Every record of an attribute-value JSONL file (``ConvertError`` naming file:line and the field: a missing
    ``input`` / ``category`` / ``target_scores``, a value that is not a string or an object)."""
    offers = []
    for line, obj, _ in iter_jsonl(Path(path)):
        text, _ = get_text(obj, [text_field], path, line)
        category = get_field(obj, "category", path, line)
        if not isinstance(category, str) or not category.strip():
            raise ConvertError(f"expected a non-empty string, got {category!r:.60}", path, line, "category")
        scores = get_field(obj, "target_scores", path, line)
        if not isinstance(scores, dict):
            raise ConvertError(f"expected an object, got {type_name(scores)}", path, line, "target_scores")
        gold: Dict[str, Optional[List[str]]] = {}
        for attribute, values in scores.items():
            if not isinstance(values, dict):
                raise ConvertError(f"expected an object of values, got {type_name(values)}", path, line, f"target_scores.{attribute}")
            names = list(values)
            gold[attribute] = None if not names or names[0] == ABSENT else [v.strip() for v in names if v != ABSENT]
        offers.append(Offer(line, text, category.strip(), gold))
    return offers


def scored_values(doc: Doc, spans_key: str = "attributes") -> Dict[str, Tuple[str, float]]:
    """{label: (text, confidence) of its most confident span} (``doc.spans[spans_key]``, else ``doc.ents``; a span
    without a confidence counts 0; ties: the earlier span)."""
    spans = list(doc.spans[spans_key]) if spans_key in doc.spans else list(doc.ents)
    best: Dict[str, Tuple[str, float]] = {}
    for span in spans:
        confidence = span._.confidence if span.has_extension("confidence") and span._.confidence is not None else 0.0
        if span.label_ not in best or confidence > best[span.label_][1]:
            best[span.label_] = (span.text.strip(), float(confidence))
    return best


def predicted_values(doc: Doc, spans_key: str = "attributes") -> Dict[str, str]:
    """{label: text of its most confident span} (see ``scored_values``)."""
    return {label: text for label, (text, _) in scored_values(doc, spans_key).items()}


def slot_outcome(gold: Optional[Sequence[str]], prediction: Optional[str]) -> str:
    """One slot's outcome (NN, NV, VN, VC, VW); ``gold`` None: absent."""
    if gold is None:
        return "NN" if prediction is None else "NV"
    if prediction is None:
        return "VN"
    return "VC" if prediction in gold else "VW"


def count_slots(offers: Sequence[Offer], predictions: Sequence[Mapping[str, str]], strict: bool = False) -> Dict[Tuple[str, str], Counter]:
    """{(category, attribute): Counter of outcomes}."""
    counts: Dict[Tuple[str, str], Counter] = defaultdict(Counter)
    for offer, predicted in zip(offers, predictions):
        for attribute, gold in offer.gold.items():
            counts[offer.category, attribute][slot_outcome(gold, predicted.get(attribute))] += 1
        if strict:
            for attribute in set(predicted) - set(offer.gold):
                counts[offer.category, attribute]["NV"] += 1
    return counts


def prf(counts: Mapping[str, int]) -> Dict[str, float]:
    """Precision, recall and F1 (fractions; 0 when undefined) of outcome counts."""
    predicted = counts.get("NV", 0) + counts.get("VC", 0) + counts.get("VW", 0)
    relevant = counts.get("VN", 0) + counts.get("VC", 0) + counts.get("VW", 0)
    p = counts.get("VC", 0) / predicted if predicted else 0.0
    r = counts.get("VC", 0) / relevant if relevant else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def summarize(counts: Mapping[Tuple[str, str], Counter], categories: Optional[Iterable[str]] = None) -> Dict[str, Any]:
    """Micro and macro P/R/F1 and the five counts over the given categories' slots (default: all)."""
    keep = None if categories is None else set(categories)
    total: Counter = Counter()
    pairs = []
    for (category, attribute), c in sorted(counts.items()):
        if keep is not None and category not in keep:
            continue
        total.update(c)
        if sum(c[o] for o in ("NV", "VN", "VC", "VW")):
            pairs.append(prf(c))
    macro = {key: sum(p[key] for p in pairs) / len(pairs) if pairs else 0.0 for key in ("precision", "recall", "f1")}
    return {"micro": prf(total), "macro": macro, "counts": {o: total[o] for o in OUTCOMES}, "n_slots": sum(total.values())}


def score_offers(offers: Sequence[Offer], predictions: Sequence[Mapping[str, str]], strict: bool = False) -> Dict[str, Any]:
    """Overall, per category and per (category, attribute) scores of predictions for ``offers``."""
    counts = count_slots(offers, predictions, strict)
    categories = sorted({o.category for o in offers})
    return {
        "strict": strict,
        "overall": summarize(counts),
        "per_category": {c: summarize(counts, [c]) for c in categories},
        "per_attribute": {f"{c} / {a}": dict(prf(n), counts={o: n[o] for o in OUTCOMES}) for (c, a), n in sorted(counts.items())},
    }


ModelSpec = Union[str, Path, Language]


def predict_offers(
    ensembles: Mapping[str, Sequence[ModelSpec]], offers: Sequence["Offer"], batch_size: int = 256, min_votes: Optional[int] = None
) -> Tuple[List[Dict[str, str]], float]:
    """{attribute: value} per offer from its category's pipelines (one: its most confident span per label; several:
    their vote, ``vote_values``); an offer of a category without pipelines gets {}. Also the process time of
    prediction alone (pipelines are loaded one at a time, loading excluded)."""
    predictions: List[Dict[str, str]] = [{} for _ in offers]
    by_category: Dict[str, List[int]] = defaultdict(list)
    for i, offer in enumerate(offers):
        by_category[offer.category].append(i)
    seconds = 0.0
    for category, rows in by_category.items():
        members = list(ensembles.get(category, ()))
        if not members:
            continue
        proposals: List[List[Dict[str, Tuple[str, float]]]] = [[] for _ in rows]
        for model in members:
            nlp = model if isinstance(model, Language) else spacy.load(model)
            start = time.process_time()
            for k, doc in enumerate(nlp.pipe((offers[i].text for i in rows), batch_size=batch_size)):
                proposals[k].append(scored_values(doc))
            seconds += time.process_time() - start
        for i, proposal in zip(rows, proposals):
            predictions[i] = vote_values(proposal, min_votes) if len(members) > 1 else {a: v for a, (v, _) in proposal[0].items()}
    return predictions, seconds


def evaluate_attribute_values(
    models: Mapping[str, Union[ModelSpec, Sequence[ModelSpec]]],
    test_path: Path,
    strict: bool = False,
    batch_size: int = 256,
    text_field: str = "input",
    min_votes: Optional[int] = None,
) -> Dict[str, Any]:
    """Run each category's pipeline (``models``: {category: pipeline dir, package name or Language}) on its
    offers of ``test_path`` and score them. A list of pipelines for a category is an ensemble: they vote on each
    attribute's value (``value_vote.vote_values``; ``min_votes`` None: a majority). A category without a model
    predicts nothing (all its slots are NN or VN) and is named with its offer count in ``categories_without_model``;
    ``models_without_offers`` names the models that had nothing to do; ``predict_cpu_seconds`` is the process time
    of prediction alone (loading excluded)."""
    ensembles = {c: list(m) if isinstance(m, (list, tuple)) else [m] for c, m in models.items()}
    if min_votes is not None and not all(1 <= min_votes <= len(m) for m in ensembles.values()):
        raise ValueError(f"--min-votes must be between 1 and the smallest ensemble's size ({min(map(len, ensembles.values()), default=0)}), got {min_votes}")
    offers = read_offers(Path(test_path), text_field)
    predictions, predict_seconds = predict_offers(ensembles, offers, batch_size, min_votes)
    offers_per_category = Counter(offer.category for offer in offers)
    scores = score_offers(offers, predictions, strict)
    scores["n_offers"] = len(offers)
    scores["predict_cpu_seconds"] = predict_seconds  # nlp.pipe and value picking, pipelines loaded (process time)
    scores["ensemble_sizes"] = {c: len(m) for c, m in sorted(ensembles.items())}
    scores["categories_without_model"] = {c: n for c, n in sorted(offers_per_category.items()) if c not in models}
    scores["models_without_offers"] = sorted(set(models) - set(offers_per_category))
    return scores


def models_from_run(run_dir: Path) -> Dict[str, Path]:
    """{vertical: pipeline} of a training output with a ``run.json`` (train, train-pair, train-group)."""
    import srsly

    info = srsly.read_json(Path(run_dir) / "run.json")
    return {vertical: (Path(run_dir) / paths["model"]).resolve() for vertical, paths in info["verticals"].items()}


def pipeline_vertical(model: Union[str, Path]) -> Optional[str]:
    """The vertical an ``ave_tagger`` of a pipeline directory is bound to (from its config.cfg), or None."""
    config = Path(model) / "config.cfg"
    if not config.is_file():
        return None
    components = spacy.util.load_config(config, interpolate=False)["components"]
    names = {block.get("vertical") for block in components.values() if block.get("factory") == "ave_tagger"}
    names.discard(None)
    return names.pop() if len(names) == 1 else None


def resolve_models(specs: Sequence[str], categories: Sequence[str]) -> Dict[str, List[Path]]:
    """{category: pipelines} from ``CATEGORY=DIR`` specs, training outputs with a run.json (every vertical) and
    pipeline directories (their tagger's vertical, or the test file's only category); a category named by several
    specs gets them all (an ensemble, in the order given). ValueError, one line, for a path that does not exist or a
    pipeline whose category cannot be told."""
    models: Dict[str, List[Path]] = {}

    def add(category: str, path: Path) -> None:
        models.setdefault(category, []).append(path)

    for spec in specs:
        name, sep, location = str(spec).partition("=")
        if sep and name.strip() and not Path(spec).exists():
            path = Path(location)
            if not path.exists():
                raise ValueError(f"{location}: model not found (for category {name.strip()!r})")
            add(name.strip(), path)
            continue
        path = Path(spec)
        if (path / "run.json").is_file():
            for vertical, model in models_from_run(path).items():
                add(vertical, model)
        elif path.is_dir():
            vertical = pipeline_vertical(path) or (categories[0] if len(set(categories)) == 1 else None)
            if vertical is None:
                raise ValueError(f"{path}: the pipeline names no vertical and the test file has several categories; give it as --model CATEGORY={path}")
            add(vertical, path)
        else:
            raise ValueError(f"{path}: model not found (a pipeline directory, a training output with run.json, or CATEGORY=DIR)")
    return models


def format_attribute_values(scores: Dict[str, Any]) -> str:
    """Markdown table: per category and overall micro-P/R/F1, macro-F1 and the five counts (percent)."""
    head = "| category | micro-P | micro-R | micro-F1 | macro-F1 | " + " | ".join(OUTCOMES) + " |"
    lines = [head, "|---|---|---|---|---|" + "---|" * len(OUTCOMES)]
    rows = list(scores["per_category"].items()) + [("**all**" + (" (strict)" if scores["strict"] else ""), scores["overall"])]
    for name, s in rows:
        m = s["micro"]
        lines.append(
            f"| {name} | {100 * m['precision']:.1f} | {100 * m['recall']:.1f} | {100 * m['f1']:.1f} | {100 * s['macro']['f1']:.1f} | "
            + " | ".join(str(s["counts"][o]) for o in OUTCOMES) + " |"
        )
    ensembles = {c: n for c, n in scores.get("ensemble_sizes", {}).items() if n > 1}
    if ensembles:
        lines.append("\nensembles (models voting on each value): " + ", ".join(f"{c} {n}" for c, n in ensembles.items()))
    for category, n in scores.get("categories_without_model", {}).items():
        lines.append(f"\nno model for category {category!r}: its {n} offers were scored as predicting nothing")
    return "\n".join(lines)
