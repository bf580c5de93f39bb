"""Less supervision from a full corpus, for experiments; dev and test stay whole.

- ``subsample_corpus``: a fixed fraction of a vertical's training docs (the paper's low-resource setting);
- ``drop_spans``: every training doc kept, a fixed fraction of its gold spans removed (incomplete labels, issue 16)."""
import random
import shutil
from pathlib import Path
from typing import Dict, List

import spacy
from spacy.tokens import Doc, DocBin

from ..label_coverage import mark_partial


def _check_fraction(fraction: float) -> None:
    if not 0 < fraction <= 1:
        raise ValueError(f"--fraction must be in (0, 1], got {fraction}")


def _read_train(corpus_dir: Path, output_dir: Path) -> List[Doc]:
    """The docs of ``CORPUS_DIR/train.spacy`` (ValueError, one line: missing, empty, or output = input)."""
    train = Path(corpus_dir) / "train.spacy"
    if not train.is_file():
        raise ValueError(f"{train}: not found (expected a corpus folder from 'convert')")
    if Path(output_dir).resolve() == Path(corpus_dir).resolve():
        raise ValueError(f"{output_dir}: the output folder must not be the input corpus")
    docs = list(DocBin().from_disk(train).get_docs(spacy.blank("en").vocab))
    if not docs:
        raise ValueError(f"{train}: no training docs")
    return docs


def _write(corpus_dir: Path, output_dir: Path, docs: List[Doc]) -> None:
    """``OUTPUT_DIR/train.spacy`` (written to a temporary file, then moved into place) and copies of dev and test."""
    corpus_dir, output_dir = Path(corpus_dir), Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = output_dir / "train.spacy.tmp"
    DocBin(docs=docs, store_user_data=True).to_disk(tmp)
    tmp.replace(output_dir / "train.spacy")
    for split in ("dev", "test"):
        if (corpus_dir / f"{split}.spacy").is_file():
            shutil.copyfile(corpus_dir / f"{split}.spacy", output_dir / f"{split}.spacy")


def subsample_corpus(corpus_dir: Path, output_dir: Path, fraction: float, seed: int = 0) -> Dict[str, int]:
    """Write ``OUTPUT_DIR/train.spacy`` with round(fraction x n) of ``CORPUS_DIR/train.spacy``'s docs (at least one,
    drawn with ``seed``, kept in file order) and copies of its ``dev.spacy`` and ``test.spacy``. The sample for a
    smaller fraction is a subset of the sample for a larger one (same seed). Returns {"kept": k, "of": n}."""
    _check_fraction(fraction)
    docs = _read_train(corpus_dir, output_dir)
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    keep = sorted(order[: max(1, round(fraction * len(docs)))])
    _write(corpus_dir, output_dir, [docs[i] for i in keep])
    return {"kept": len(keep), "of": len(docs)}


def drop_spans(corpus_dir: Path, output_dir: Path, fraction: float, seed: int = 0) -> Dict[str, int]:
    """Write ``OUTPUT_DIR/train.spacy`` with every training doc and round(fraction x n) of the n gold spans removed
    (drawn with ``seed`` over all spans of the file; a smaller fraction's removed spans are among a larger one's),
    their tokens now ``O``. Every doc is marked as partially labelled, its known attributes the labels of the spans
    it kept (as if the seller's specification had not listed the removed ones). Dev and test are copied whole.
    Returns {"removed": k, "of": n, "docs": d}."""
    _check_fraction(fraction)
    docs = _read_train(corpus_dir, output_dir)
    spans = [(d, i) for d, doc in enumerate(docs) for i in range(len(doc.ents))]
    random.Random(seed).shuffle(spans)
    removed = set(spans[: round(fraction * len(spans))])
    for d, doc in enumerate(docs):
        kept = [ent for i, ent in enumerate(doc.ents) if (d, i) not in removed]
        doc.set_ents(kept, default="outside")
        mark_partial(doc, {ent.label_ for ent in kept})
    _write(corpus_dir, output_dir, docs)
    return {"removed": len(removed), "of": len(spans), "docs": len(docs)}
