"""Shared test helpers: small synthetic product verticals (Coffee, Tea, Cocoa titles), a tiny vectors table and a
tiny model config (``TINY``). Fixtures built from them live in ``conftest.py``."""
import random
from pathlib import Path
from typing import Dict, List, Tuple

import numpy
import spacy
from spacy.tokens import DocBin
from spacy.training.initialize import init_nlp
from spacy.util import fix_random_seed, load_config
from spacy.vectors import Vectors

from spacy_mtlave.training.corpus import create_vertical_corpus
from spacy_mtlave.training.train import CONFIG_DIR
from spacy_mtlave.vertical import set_vertical

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


def joint_nlp(data_dir: Path, **overrides):
    settings = dict(TINY)
    settings.update({
        "paths.vectors": str(data_dir / "vectors"),
        "components.tagger_v1.vertical": "Coffee",
        "components.tagger_v2.vertical": "Tea",
        "training.dropout": 0.0,
        "components.tok2vec.model.encode.dropout": 0.0,
    })
    for i, name in ((1, "coffee"), (2, "tea")):
        settings[f"paths.train{i}"] = str(data_dir / name / "train.spacy")
        settings[f"paths.dev{i}"] = str(data_dir / name / "dev.spacy")
    settings.update(overrides)
    fix_random_seed(0)
    return init_nlp(load_config(CONFIG_DIR / "pair.cfg", overrides=settings, interpolate=False))


def train_examples(nlp, data_dir):
    paths = {"v1": str(data_dir / "coffee" / "train.spacy"), "v2": str(data_dir / "tea" / "train.spacy")}
    return list(create_vertical_corpus(paths)(nlp))
