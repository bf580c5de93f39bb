"""Train one vertical with spaCy's own training loop (``spacy train`` with a config from ``configs/``)."""
from pathlib import Path
from typing import Any, Dict, Optional

from spacy.cli.train import train as spacy_train

from .vectors import ensure_glove_vectors

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def corpus_paths(corpus_dir: Path) -> Dict[str, Path]:
    """``CORPUS_DIR/{train,dev}.spacy`` as written by ``convert``; ValueError naming the missing file."""
    corpus_dir = Path(corpus_dir)
    paths = {split: corpus_dir / f"{split}.spacy" for split in ("train", "dev")}
    for path in paths.values():
        if not path.is_file():
            raise ValueError(f"{path}: not found (expected {corpus_dir}/train.spacy and dev.spacy, see 'convert')")
    return paths


def default_config(name: str) -> Path:
    path = CONFIG_DIR / name
    if not path.is_file():
        raise ValueError(f"{path}: default config not found; pass --config")
    return path


def train_vertical(
    corpus_dir: Path,
    output_dir: Path,
    config: Optional[Path] = None,
    vectors: Optional[Path] = None,
    seed: int = 0,
    max_steps: Optional[int] = None,
    overrides: Optional[Dict[str, Any]] = None,
) -> Path:
    """Train ``CORPUS_DIR/{train,dev}.spacy``; returns ``OUTPUT_DIR/model-best``. Without ``vectors`` the GloVe table
    is built once from the installed package and cached."""
    paths = corpus_paths(corpus_dir)
    config = Path(config) if config is not None else default_config("single.cfg")
    settings: Dict[str, Any] = {
        "paths.train": str(paths["train"]),
        "paths.dev": str(paths["dev"]),
        "paths.vectors": str(ensure_glove_vectors(vectors)),
        "system.seed": seed,
    }
    if max_steps is not None:
        settings["training.max_steps"] = max_steps
    settings.update(overrides or {})
    spacy_train(config, Path(output_dir), overrides=settings)
    return Path(output_dir) / "model-best"
