"""Small synthetic fixtures: two product verticals, a tiny vectors table and a tiny model config."""
import random
from pathlib import Path
from typing import Dict, List, Tuple

import numpy
import pytest
import spacy
import torch
from spacy.tokens import DocBin
from spacy.vectors import Vectors

from spacy_mtlave.vertical import set_vertical

torch.set_num_threads(1)

BRANDS = ["Acme", "Lavazza", "Twinings", "Folgers", "Bigelow", "Yogi", "Peets", "Tazo"]
COLORS = ["red", "green", "black", "white", "herbal", "dark"]
NOUNS = {"Coffee": ["coffee", "beans", "espresso"], "Tea": ["tea", "bags", "leaves"], "Cocoa": ["cocoa", "powder", "mix"]}
SIZES = ["12 oz", "20 count", "1 lb", "100 ct"]

# a model small enough to train in seconds
TINY: Dict[str, object] = {
    "components.tok2vec.model.embed.width": 16,
    "components.tok2vec.model.embed.rows": [200, 100, 100, 50],
    "components.tok2vec.model.embed.char_dim": 8,
    "components.tok2vec.model.embed.char_width": 8,
    "components.tok2vec.model.encode.hidden_width": 32,
    "training.eval_frequency": 10,
    "training.patience": 0,
    "training.max_epochs": 0,
    "training.optimizer.learn_rate": 0.01,
}


def make_title(rng: random.Random, vertical: str) -> Tuple[str, List[Tuple[int, int, str]]]:
    """A title like 'Acme dark coffee , 12 oz' and its character spans (start, end, label)."""
    parts = [(rng.choice(BRANDS), "Brand"), (rng.choice(COLORS), "Flavor"), (rng.choice(NOUNS[vertical]), None), (",", None), (rng.choice(SIZES), "Size")]
    if rng.random() < 0.3:
        parts = parts[1:]  # no brand
    text, spans = "", []
    for value, label in parts:
        start = len(text) + (1 if text else 0)
        text = f"{text} {value}" if text else value
        if label:
            spans.append((start, start + len(value), label))
    return text, spans


def make_docs(nlp, vertical: str, n: int, seed: int):
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        text, spans = make_title(rng, vertical)
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(s, e, label=label) for s, e, label in spans]
        set_vertical(doc, vertical)
        docs.append(doc)
    return docs


def write_corpus(path: Path, vertical: str, n_train: int = 60, n_dev: int = 12, seed: int = 0) -> Path:
    nlp = spacy.blank("en")
    path.mkdir(parents=True, exist_ok=True)
    for split, n, s in (("train", n_train, seed), ("dev", n_dev, seed + 1000), ("test", n_dev, seed + 2000)):
        DocBin(docs=make_docs(nlp, vertical, n, s), store_user_data=True).to_disk(path / f"{split}.spacy")
    return path


def write_vectors(path: Path, dim: int = 8) -> Path:
    """A vectors-only pipeline with lower-cased keys for the fixture vocabulary."""
    nlp = spacy.blank("en")
    words = sorted({w.lower() for w in BRANDS + COLORS + sum(NOUNS.values(), []) + " ".join(SIZES).split()} | {","})
    rng = numpy.random.RandomState(0)
    data = rng.normal(size=(len(words), dim)).astype("float32")
    nlp.vocab.vectors = Vectors(strings=nlp.vocab.strings, data=data, keys=[nlp.vocab.strings.add(w) for w in words])
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_corpus(root / "coffee", "Coffee", seed=0)
    write_corpus(root / "tea", "Tea", seed=1)
    write_vectors(root / "vectors")
    return root


@pytest.fixture(scope="session")
def trained_single(data_dir, tmp_path_factory) -> Path:
    """A tiny single-vertical pipeline trained with the package's own train function."""
    from spacy_mtlave.training.train import train_vertical

    out = tmp_path_factory.mktemp("single")
    return train_vertical(data_dir / "coffee", out, vectors=data_dir / "vectors", seed=0, max_steps=60, overrides=TINY)
