"""Score a trained pipeline on a ``.spacy`` test corpus with the benchmark metrics (``metrics.score_examples``)."""
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import spacy
from spacy.language import Language
from spacy.training import Example

from ..training.corpus import read_docbin
from .metrics import score_examples, train_tag_counts

SUMMARY = (("macro_p", "macro-P"), ("macro_r", "macro-R"), ("macro_f1", "macro-F1"), ("accuracy", "accuracy"),
           ("ents_p", "span P"), ("ents_r", "span R"), ("ents_f", "span F1"), ("rare_tag_f1", "rare-tag F1"))


def read_docs(nlp: Language, path: Path) -> List:
    """Docs of a DocBin; ValueError naming the file when it is missing, a folder, not a DocBin or empty."""
    docs = read_docbin(path, nlp.vocab)
    if not docs:
        raise ValueError(f"{path}: no documents")
    return docs


def check_rare_max(rare_max: int) -> None:
    """ValueError (one line) for a negative rare-tag bound."""
    if rare_max < 0:
        raise ValueError(f"--rare-max must be 0 or more, got {rare_max}")


def model_labels(nlp: Language) -> List[str]:
    """Sorted labels of all the pipeline's labelled components (``ave_tagger``, ``ner``, ...)."""
    return sorted({label for labels in nlp.pipe_labels.values() for label in labels})


def _label(tag: str) -> str:
    return tag[2:]


def evaluate_pipeline(
    model: Union[str, Path, Language], test_path: Path, train_path: Optional[Path] = None, batch_size: int = 256,
    rare_max: int = 15,
) -> Dict[str, Any]:
    """Predict on ``test_path`` and score: ``macro_p/r/f1``, ``accuracy``, ``ents_p/r/f``, ``rare_tag_f1``
    (needs ``train_path`` for the training tag counts; tags seen at most ``rare_max`` times) and ``per_tag``.

    Label mismatches are scored as errors, not raised: ``unknown_labels`` holds ``not_in_model`` (gold test
    labels the model cannot predict: all missed; None when the model exposes no labels) and ``not_in_test``
    (labels the model predicted that occur neither in the test gold nor in the training corpus: all false
    positives).
    """
    check_rare_max(rare_max)
    nlp = model if isinstance(model, Language) else spacy.load(model)
    gold = read_docs(nlp, test_path)
    train_counts = train_tag_counts(read_docs(nlp, train_path)) if train_path is not None else None
    predicted = nlp.pipe((nlp.make_doc(doc.text) for doc in gold), batch_size=batch_size)
    examples = [Example(pred, ref) for pred, ref in zip(predicted, gold)]
    scores = score_examples(examples, train_counts=train_counts, rare_max=rare_max)
    scores["n_docs"] = len(examples)
    known = model_labels(nlp)
    test_labels = sorted({ent.label_ for doc in gold for ent in doc.ents})
    scores["unknown_labels"] = {
        "not_in_model": sorted(set(test_labels) - set(known)) if known else None,
        "not_in_test": sorted({_label(tag) for tag in scores["unknown_tags"]}),
    }
    return scores


def label_warning(scores: Dict[str, Any]) -> Optional[str]:
    """One line naming the labels ``evaluate_pipeline`` found on one side only, or None."""
    unknown = scores.get("unknown_labels") or {}
    parts = []
    if unknown.get("not_in_model"):
        parts.append(f"test labels unknown to the model (all missed): {', '.join(unknown['not_in_model'])}")
    if unknown.get("not_in_test"):
        parts.append(f"predicted labels absent from the test (and training) data (false positives): {', '.join(unknown['not_in_test'])}")
    return "warning: " + "; ".join(parts) if parts else None


def percent(value: Optional[float]) -> str:
    """A fraction as a percent with one decimal; "n/a" for None."""
    return "n/a" if value is None else f"{100 * value:.1f}"


def format_scores(scores: Dict[str, Any]) -> str:
    """Markdown: the summary metrics (percent) and one row per tag, most frequent gold tag first."""
    lines = ["| metric | % |", "|---|---|"]
    lines += [f"| {name} | {percent(scores.get(key))} |" for key, name in SUMMARY]
    per_tag = scores["per_tag"]
    with_train = any("train_count" in row for row in per_tag.values())
    header = ["tag"] + (["train"] if with_train else []) + ["support", "tp", "fp", "fn", "P", "R", "F1"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for tag, row in sorted(per_tag.items(), key=lambda item: (-item[1]["support"], item[0])):
        cells = [tag] + ([str(row.get("train_count", 0))] if with_train else [])
        cells += [str(row[k]) for k in ("support", "tp", "fp", "fn")] + [percent(row[k]) for k in ("p", "r", "f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
