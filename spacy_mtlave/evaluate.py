"""Score a trained pipeline on a ``.spacy`` test corpus with the benchmark metrics (``metrics.score_examples``)."""
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import spacy
from spacy.language import Language
from spacy.tokens import DocBin
from spacy.training import Example

from .metrics import score_examples, train_tag_counts


def read_docs(nlp: Language, path: Path) -> List:
    """Docs of a DocBin; ValueError naming the file when it is missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: not found")
    docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    if not docs:
        raise ValueError(f"{path}: no documents")
    return docs


def evaluate_pipeline(
    model: Union[str, Path, Language], test_path: Path, train_path: Optional[Path] = None, batch_size: int = 256
) -> Dict[str, Any]:
    """Predict on ``test_path`` and score: ``macro_p/r/f1``, ``accuracy``, ``ents_p/r/f``, ``rare_tag_f1``
    (needs ``train_path`` for the training tag counts) and ``per_tag``."""
    nlp = model if isinstance(model, Language) else spacy.load(model)
    gold = read_docs(nlp, test_path)
    train_counts = train_tag_counts(read_docs(nlp, train_path)) if train_path is not None else None
    predicted = nlp.pipe((nlp.make_doc(doc.text) for doc in gold), batch_size=batch_size)
    examples = [Example(pred, ref) for pred, ref in zip(predicted, gold)]
    scores = score_examples(examples, train_counts=train_counts)
    scores["n_docs"] = len(examples)
    return scores
