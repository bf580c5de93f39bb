"""Training commands over spaCy's own loop (``spacy train``): one vertical (``train``), two verticals with one shared
encoder and the coupling loss (``train-pair``), any number of verticals (``train-group``). The two multi-task commands
run through one function, :func:`train_joint`: build the joint config, train, then write one standalone pipeline per
vertical (each from its own best checkpoint), the coupling's label-label attention and ``run.json``."""
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from spacy.cli.train import train as spacy_train
from thinc.api import Config

from ..outputs import write_json
from ..pipeline.coupling import MODES
from ..vertical import slugify
from .checkpoints import selected_checkpoint
from .corpus import corpus_paths, resolve_verticals, training_paths
from .export import split_vertical, trained_attention
from .overrides import check_overrides, load_training_config
from .run_info import write_run_info
from .vectors import ensure_glove_vectors

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
CONFIGS = {"single": "single.cfg", "pair": "pair.cfg", "single_trf": "single_trf.cfg", "pair_trf": "pair_trf.cfg", "baseline_ner": "baseline_ner.cfg"}


def shipped_config(name: str) -> Path:
    """A config shipped inside the package (``spacy_mtlave/training/configs``), by file name."""
    path = CONFIG_DIR / name
    if not path.is_file():
        raise ValueError(f"{name}: no such shipped config (shipped: {', '.join(sorted(p.name for p in CONFIG_DIR.glob('*.cfg')))})")
    return path


def config_path(config: Optional[Path], default: str) -> Path:
    """``config``, else the shipped ``default``; ValueError naming the file when it does not exist."""
    if config is None:
        return shipped_config(default)
    if not Path(config).is_file():
        raise ValueError(f"{config}: config file not found")
    return Path(config)


def checkpoint_settings(config: Path, output_dir: Path) -> Dict[str, Any]:
    """The override that tells the config's ``spacy_mtlave.vertical_checkpoints.v1`` logger where to write
    (nothing for another logger)."""
    logger = load_training_config(config)["training"].get("logger", {})
    if logger.get("@loggers") != "spacy_mtlave.vertical_checkpoints.v1":
        return {}
    return {"training.logger.output_dir": str(Path(output_dir).resolve())}


def partial_label_settings(config: Config, unlabelled_as: Optional[str]) -> Dict[str, Any]:
    """The overrides of ``--partial-labels any|absent``: every ``ave_tagger`` of ``config`` learns from every doc
    with the partial-label loss, its unlabelled tokens allowed to be ``O`` or ``unlabelled_as`` attributes (nothing
    when ``unlabelled_as`` is None)."""
    from ..pipeline.tagger import UNLABELLED_AS

    if unlabelled_as is None:
        return {}
    if unlabelled_as not in UNLABELLED_AS:
        raise ValueError(f"--partial-labels must be one of {', '.join(UNLABELLED_AS)}, got {unlabelled_as!r}")
    taggers = [name for name, block in config["components"].items() if block.get("factory") == "ave_tagger"]
    if not taggers:
        raise ValueError("--partial-labels: the config has no ave_tagger component")
    settings: Dict[str, Any] = {}
    for name in taggers:
        settings[f"components.{name}.partial_labels"] = "all"
        settings[f"components.{name}.unlabelled_as"] = unlabelled_as
    return settings


def _settings(vectors: Optional[Path], seed: int, max_steps: Optional[int]) -> Dict[str, Any]:
    settings: Dict[str, Any] = {"paths.vectors": str(ensure_glove_vectors(vectors)), "system.seed": seed}
    if max_steps is not None:
        settings["training.max_steps"] = max_steps
    return settings


def train_vertical(
    corpus_dir: Path,
    output_dir: Path,
    config: Optional[Path] = None,
    vectors: Optional[Path] = None,
    seed: int = 0,
    max_steps: Optional[int] = None,
    overrides: Optional[Dict[str, Any]] = None,
    gpu_id: int = -1,
    partial_labels: Optional[str] = None,
) -> Path:
    """Train ``CORPUS_DIR/{train,dev}.spacy``; returns the trained pipeline (``OUTPUT_DIR/model-selected``, the
    checkpoint chosen by the config's selection rule, or spaCy's ``model-best`` with another logger). Without
    ``vectors`` the GloVe table is built once from the installed package and cached. ``gpu_id`` >= 0 trains on that
    GPU (spaCy's --gpu-id). Checked before training (ValueError, one line): the corpus (one vertical, training docs;
    an empty dev.spacy is replaced by train.spacy, see ``training_paths``), the config and the overrides."""
    vertical = resolve_verticals([corpus_dir], log=lambda _: None)[0]
    paths = training_paths(corpus_dir)
    config = config_path(config, "single.cfg")
    loaded = load_training_config(config)
    check_overrides(loaded, overrides or {}, config)
    settings = dict(_settings(vectors, seed, max_steps), **{"paths.train": str(paths["train"]), "paths.dev": str(paths["dev"])})
    settings.update(partial_label_settings(loaded, partial_labels))
    settings.update(overrides or {})
    settings.update(checkpoint_settings(config, Path(output_dir)))
    spacy_train(config, Path(output_dir), overrides=settings, use_gpu=gpu_id)
    best = Path(output_dir) / "model-best"
    checkpoint = selected_checkpoint(Path(output_dir), "ave_tagger")
    if checkpoint is not None:  # the epoch chosen by the config's selection rule (same rule as the multi-task heads)
        best = split_vertical(best, "ave_tagger", Path(output_dir) / "model-selected", checkpoint)
    write_run_info(output_dir, "single", "single", seed, config, {vertical: (best, Path(corpus_dir))}, _recorded(overrides, partial_labels))
    return best


def train_joint(
    kind: str,
    config: Config,
    corpora: Dict[str, Path],
    heads: Dict[str, str],
    output_dir: Path,
    template: Path,
    settings: Dict[str, Any],
    coupling: str,
    seed: int,
    recorded: Optional[Dict[str, Any]] = None,
    gpu_id: int = -1,
) -> Dict[str, Path]:
    """Train a joint config (``config``, written to ``OUTPUT_DIR/<kind>.cfg``) into ``OUTPUT_DIR/joint``, then write
    per vertical a standalone pipeline ``OUTPUT_DIR/<slug>`` from that head's own best checkpoint, the coupling's
    label-label attention (``attention.json`` for a pair, ``attention/<a>+<b>.json`` per coupled pair of a group) and
    ``run.json`` (kind, the ``template`` config and the ``recorded`` overrides). ``corpora`` and ``heads`` map each
    vertical to its corpus folder and its head's component name. Returns {vertical: pipeline dir}."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    config_file = output_dir / f"{kind}.cfg"
    config.to_disk(config_file)
    settings = dict(settings, **{"components.coupling.mode": coupling})
    settings.update(checkpoint_settings(config_file, output_dir / "joint"))
    spacy_train(config_file, output_dir / "joint", overrides=settings, use_gpu=gpu_id)
    joint = output_dir / "joint" / "model-best"
    train_files = [corpus_paths(corpora[v])["train"] for v in corpora]
    verticals = list(corpora)
    attentions = trained_attention(joint, train_files, dict(zip([f"v{i}" for i in range(1, len(verticals) + 1)], verticals)))
    if kind == "pair":
        write_json(output_dir / "attention.json", attentions[0])
    elif coupling != "none":
        (output_dir / "attention").mkdir(exist_ok=True)
        for attention in attentions:
            a, b = attention["verticals"]
            write_json(output_dir / "attention" / f"{slugify(a)}+{slugify(b)}.json", attention)
    outputs = {v: split_vertical(joint, heads[v], output_dir / slugify(v), selected_checkpoint(output_dir / "joint", heads[v])) for v in verticals}
    write_run_info(output_dir, kind, coupling, seed, template, {v: (outputs[v], corpora[v]) for v in verticals}, recorded)
    return outputs


def _recorded(overrides: Optional[Dict[str, Any]], partial_labels: Optional[str]) -> Dict[str, Any]:
    """What run.json records of the command line: the overrides, and ``partial_labels`` when it was given."""
    return dict(overrides or {}, **({"partial_labels": partial_labels} if partial_labels else {}))


def _check_coupling(coupling: str) -> None:
    if coupling not in MODES:
        raise ValueError(f"--coupling must be one of {', '.join(MODES)}, got {coupling!r}")


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
    verticals: Optional[Sequence[str]] = None,
    partial_labels: Optional[str] = None,
) -> Dict[str, Path]:
    """Train two verticals jointly (the shipped ``pair.cfg`` by default); see :func:`train_joint`. ``verticals``
    names the vertical of a corpus whose docs carry none (default: the folder's name)."""
    _check_coupling(coupling)
    dirs = [Path(corpus1), Path(corpus2)]
    names = resolve_verticals(dirs, verticals)
    corpora = [training_paths(d) for d in dirs]
    template = config_path(config, "pair.cfg")
    joint = load_training_config(template)
    check_overrides(joint, overrides or {}, template)
    settings = _settings(vectors, seed, max_steps)
    for i, (paths, vertical) in enumerate(zip(corpora, names), start=1):
        settings[f"paths.train{i}"] = str(paths["train"])
        settings[f"paths.dev{i}"] = str(paths["dev"])
        settings[f"components.tagger_v{i}.vertical"] = vertical
    for split in ("train", "dev"):
        if "verticals" in joint["corpora"][split]:
            settings[f"corpora.{split}.verticals"] = {"v1": names[0], "v2": names[1]}
    settings.update(partial_label_settings(joint, partial_labels))
    settings.update(overrides or {})
    return train_joint(
        "pair", joint, dict(zip(names, dirs)), {names[0]: "tagger_v1", names[1]: "tagger_v2"}, output_dir, template, settings, coupling, seed,
        _recorded(overrides, partial_labels), gpu_id,
    )


def train_group(
    corpus_dirs: Sequence[Path],
    output_dir: Path,
    config: Optional[Path] = None,
    vectors: Optional[Path] = None,
    seed: int = 0,
    coupling: str = "full",
    partners: int = 0,
    max_steps: Optional[int] = None,
    overrides: Optional[Dict[str, Any]] = None,
    gpu_id: int = -1,
    verticals: Optional[Sequence[str]] = None,
    partial_labels: Optional[str] = None,
) -> Dict[str, Path]:
    """Train the verticals of ``corpus_dirs`` jointly with a config derived from a pair config (``group_config``);
    ``partners`` > 0 couples each vertical only with its ``partners`` best partners of
    :func:`spacy_mtlave.training.partner_verticals.suggest_partners` (0: every pair). See :func:`train_joint`."""
    from .group_config import group_config
    from .partner_verticals import partner_pairs, suggest_partners

    _check_coupling(coupling)
    if len(corpus_dirs) < 2:
        raise ValueError(f"train-group needs at least two corpora, got {len(corpus_dirs)}")
    if partners < 0:
        raise ValueError(f"--partners must be >= 0, got {partners}")
    dirs = [Path(d) for d in corpus_dirs]
    names = resolve_verticals(dirs, verticals)
    corpora = {v: training_paths(d) for v, d in zip(names, dirs)}
    template = config_path(config, "pair.cfg")
    base = load_training_config(template)
    if "coupling" not in base["components"] or len(base["components"]["coupling"].get("taggers", [])) < 1:
        raise ValueError(f"{template}: train-group needs a pair config with a 'coupling' component naming its taggers")
    settings = _settings(vectors, seed, max_steps)
    pairs = None
    if partners:
        pairs = partner_pairs(suggest_partners(dict(zip(names, dirs)), Path(settings["paths.vectors"])), partners)
    joint = group_config(base, corpora, pairs)
    check_overrides(joint, overrides or {}, template)
    settings.update(partial_label_settings(joint, partial_labels))
    settings.update(overrides or {})
    recorded = dict(_recorded(overrides, partial_labels), **({"partners": partners} if partners else {}))  # names the system in reports
    heads = {v: f"tagger_{slugify(v)}" for v in names}
    return train_joint("group", joint, dict(zip(names, dirs)), heads, output_dir, template, settings, coupling, seed, recorded, gpu_id)


def list_configs() -> List[str]:
    """Names of the shipped configs."""
    return sorted(p.name for p in CONFIG_DIR.glob("*.cfg"))
