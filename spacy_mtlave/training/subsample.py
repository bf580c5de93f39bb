"""A fixed fraction of a vertical's training docs (the paper's low-resource setting): dev and test stay whole."""
import random
import shutil
from pathlib import Path
from typing import Dict

import spacy
from spacy.tokens import DocBin


def subsample_corpus(corpus_dir: Path, output_dir: Path, fraction: float, seed: int = 0) -> Dict[str, int]:
    """Write ``OUTPUT_DIR/train.spacy`` with round(fraction x n) of ``CORPUS_DIR/train.spacy``'s docs (at least one,
    drawn with ``seed``, kept in file order) and copies of its ``dev.spacy`` and ``test.spacy``. The sample for a
    smaller fraction is a subset of the sample for a larger one (same seed). Returns {"kept": k, "of": n}."""
    if not 0 < fraction <= 1:
        raise ValueError(f"--fraction must be in (0, 1], got {fraction}")
    corpus_dir, output_dir = Path(corpus_dir), Path(output_dir)
    train = corpus_dir / "train.spacy"
    if not train.is_file():
        raise ValueError(f"{train}: not found (expected a corpus folder from 'convert')")
    if output_dir.resolve() == corpus_dir.resolve():
        raise ValueError(f"{output_dir}: the output folder must not be the input corpus")
    docs = list(DocBin().from_disk(train).get_docs(spacy.blank("en").vocab))
    if not docs:
        raise ValueError(f"{train}: no training docs")
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    keep = sorted(order[: max(1, round(fraction * len(docs)))])
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = output_dir / "train.spacy.tmp"
    DocBin(docs=[docs[i] for i in keep], store_user_data=True).to_disk(tmp)
    tmp.replace(output_dir / "train.spacy")
    for split in ("dev", "test"):
        if (corpus_dir / f"{split}.spacy").is_file():
            shutil.copyfile(corpus_dir / f"{split}.spacy", output_dir / f"{split}.spacy")
    return {"kept": len(keep), "of": len(docs)}
