"""Session fixtures (the helpers they use are in ``tests/helpers.py``)."""
from pathlib import Path

import pytest
import torch

from .helpers import TINY, write_corpus, write_vectors

torch.set_num_threads(1)


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
