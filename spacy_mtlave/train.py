"""Train one vertical with spaCy's own training loop (``spacy train`` with a config from ``configs/``)."""
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from spacy.cli.train import train as spacy_train

from .checkpoints import selected_checkpoint
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


def config_path(config: Optional[Path], default: str) -> Path:
    """``config``, else the repository's ``configs/<default>``; ValueError naming the file when it does not exist."""
    if config is None and not (CONFIG_DIR / default).is_file():
        raise ValueError(f"{CONFIG_DIR / default}: default config not found; pass --config")
    if config is not None and not Path(config).is_file():
        raise ValueError(f"{config}: config file not found")
    return CONFIG_DIR / default if config is None else Path(config)


def checkpoint_settings(config: Path, output_dir: Path) -> Dict[str, Any]:
    """The override that tells the config's ``spacy_mtlave.vertical_checkpoints.v1`` logger where to write
    (nothing for another logger)."""
    from spacy import util

    logger = util.load_config(config, interpolate=False)["training"].get("logger", {})
    if logger.get("@loggers") != "spacy_mtlave.vertical_checkpoints.v1":
        return {}
    return {"training.logger.output_dir": str(Path(output_dir).resolve())}


def train_vertical(
    corpus_dir: Path,
    output_dir: Path,
    config: Optional[Path] = None,
    vectors: Optional[Path] = None,
    seed: int = 0,
    max_steps: Optional[int] = None,
    overrides: Optional[Dict[str, Any]] = None,
    gpu_id: int = -1,
) -> Path:
    """Train ``CORPUS_DIR/{train,dev}.spacy``; returns ``OUTPUT_DIR/model-best``. Without ``vectors`` the GloVe table
    is built once from the installed package and cached. ``gpu_id`` >= 0 trains on that GPU (spaCy's --gpu-id)."""
    paths = corpus_paths(corpus_dir)
    config = config_path(config, "single.cfg")
    settings: Dict[str, Any] = {
        "paths.train": str(paths["train"]),
        "paths.dev": str(paths["dev"]),
        "paths.vectors": str(ensure_glove_vectors(vectors)),
        "system.seed": seed,
    }
    if max_steps is not None:
        settings["training.max_steps"] = max_steps
    settings.update(overrides or {})
    settings.update(checkpoint_settings(config, Path(output_dir)))
    spacy_train(config, Path(output_dir), overrides=settings, use_gpu=gpu_id)
    best = Path(output_dir) / "model-best"
    vertical = corpus_vertical(paths["train"], required=False) or Path(corpus_dir).name
    checkpoint = selected_checkpoint(Path(output_dir), "ave_tagger")
    if checkpoint is not None:  # the epoch chosen by the config's selection rule (same rule as the multi-task heads)
        from .pair import split_vertical

        best = split_vertical(best, "ave_tagger", Path(output_dir) / "model-selected", checkpoint)
    write_run_info(output_dir, "single", "single", seed, config, {vertical: (best, Path(corpus_dir))}, overrides)
    return best


def write_run_info(
    output_dir: Path, kind: str, coupling: str, seed: int, config: Path, verticals: Dict[str, Tuple[Path, Path]], overrides: Optional[Dict[str, Any]] = None
) -> None:
    """``OUTPUT_DIR/run.json``: what ``report`` needs to find a run's pipelines and corpora (paths relative to it), and
    the config overrides given on the command line."""
    import os

    import srsly

    out = Path(output_dir).resolve()
    srsly.write_json(out / "run.json", {
        "kind": kind,
        "coupling": coupling,
        "seed": seed,
        "config": str(config),
        "overrides": dict(overrides or {}),
        "verticals": {v: {"model": os.path.relpath(Path(m).resolve(), out), "corpus": os.path.relpath(Path(c).resolve(), out)} for v, (m, c) in verticals.items()},
    })


def corpus_vertical(path: Path, required: bool = True) -> Optional[str]:
    """The one vertical of a ``.spacy`` training file; ValueError when it is empty, mixed or (if ``required``)
    unlabelled."""
    import spacy
    from spacy.tokens import DocBin

    from .vertical import get_vertical

    docs = list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))
    if not docs:
        raise ValueError(f"{path}: no training docs")
    verticals = {get_vertical(doc) for doc in docs}
    if verticals == {None} and not required:
        return None
    if None in verticals:
        raise ValueError(f"{path}: docs without a vertical (doc._.vertical); write corpora with 'convert'")
    if len(verticals) > 1:
        raise ValueError(f"{path}: docs of several verticals {sorted(verticals)}; train-pair needs one vertical per corpus")
    return verticals.pop()


def train_pair(
    corpus1: Path,
    corpus2: Path,
    output_dir: Path,
    config: Optional[Path] = None,
    vectors: Optional[Path] = None,
    seed: int = 0,
    coupling: str = "full",
    max_steps: Optional[int] = None,
    overrides: Optional[Dict[str, Any]] = None,
    gpu_id: int = -1,
) -> Dict[str, Path]:
    """Train two verticals jointly (``configs/pair.cfg``); write one pipeline per vertical to ``OUTPUT_DIR/<slug>``
    and the label-label attention to ``OUTPUT_DIR/attention.json``. Returns {vertical: pipeline dir}."""
    import srsly

    from .pair import MODES, label_attention, split_vertical
    from .vertical import slugify

    if coupling not in MODES:
        raise ValueError(f"--coupling must be one of {', '.join(MODES)}, got {coupling!r}")
    paths = [corpus_paths(corpus1), corpus_paths(corpus2)]
    verticals = [corpus_vertical(p["train"]) for p in paths]
    if verticals[0] == verticals[1]:
        raise ValueError(f"{corpus1} and {corpus2} are both vertical {verticals[0]!r}; train-pair needs two different verticals")
    config = config_path(config, "pair.cfg")
    settings: Dict[str, Any] = {"paths.vectors": str(ensure_glove_vectors(vectors)), "system.seed": seed, "components.coupling.mode": coupling}
    for i, (p, vertical) in enumerate(zip(paths, verticals), start=1):
        settings[f"paths.train{i}"] = str(p["train"])
        settings[f"paths.dev{i}"] = str(p["dev"])
        settings[f"components.tagger_v{i}.vertical"] = vertical
    if max_steps is not None:
        settings["training.max_steps"] = max_steps
    settings.update(overrides or {})
    output_dir = Path(output_dir)
    settings.update(checkpoint_settings(config, output_dir / "joint"))
    spacy_train(config, output_dir / "joint", overrides=settings, use_gpu=gpu_id)
    joint = output_dir / "joint" / "model-best"
    srsly.write_json(output_dir / "attention.json", label_attention(joint, [p["train"] for p in paths])[0])
    outputs = {
        v: split_vertical(joint, f"tagger_v{i}", output_dir / slugify(v), selected_checkpoint(output_dir / "joint", f"tagger_v{i}"))
        for i, v in enumerate(verticals, start=1)
    }
    corpora = {verticals[0]: Path(corpus1), verticals[1]: Path(corpus2)}
    write_run_info(output_dir, "pair", coupling, seed, config, {v: (path, corpora[v]) for v, path in outputs.items()}, overrides)
    return outputs
