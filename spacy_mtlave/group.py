"""Train N verticals jointly: one shared tok2vec, one ``ave_tagger`` head per vertical, the coupling loss over pairs
of verticals (``GroupCouplingModel``), and batches of two verticals at a time (``group_batcher``) so that a step
costs the same whatever N is. The config is derived from a pair config (``configs/pair.cfg``): its first tagger is
the template of every vertical's head."""
import copy
import math
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import srsly
from spacy import util
from spacy.cli.train import train as spacy_train
from thinc.api import Config

from .pair import MODES, label_attention, split_vertical
from .checkpoints import selected_checkpoint
from .train import checkpoint_settings, config_path, corpus_paths, corpus_vertical, write_run_info
from .vectors import ensure_glove_vectors
from .vertical import slugify


def group_config(template: Config, corpora: Dict[str, Dict[str, Path]], pairs: Optional[Sequence[Tuple[str, str]]] = None) -> Config:
    """The joint config for ``corpora`` ({vertical: {"train": path, "dev": path}}) from a pair config: a head
    ``tagger_<slug>`` per vertical (a copy of the template's first coupled tagger), the coupling over ``pairs`` of
    verticals (all pairs when None) with ``spacy_mtlave.GroupCouplingModel.v1``, the group batcher, one score weight
    per head (the v3 coupling model and the balanced v2 batcher become their group versions), and the evaluation frequency scaled so that a run evaluates as often per epoch as a pair run."""
    config = copy.deepcopy(template)
    components, coupling = config["components"], config["components"]["coupling"]
    old = list(coupling["taggers"])
    head = components[old[0]]
    for name in old:
        del components[name]
    names = {v: f"tagger_{slugify(v)}" for v in corpora}
    for vertical, name in names.items():
        components[name] = dict(copy.deepcopy(head), vertical=vertical)
    # the coupling keeps its place relative to the heads (before them: its gradient reaches them in the same step)
    pipeline = config["nlp"]["pipeline"]
    before = pipeline.index("coupling") < min(pipeline.index(name) for name in old)
    pipeline = [p for p in pipeline if p not in old and p != "coupling"]
    config["nlp"]["pipeline"] = pipeline + (["coupling"] + list(names.values()) if before else list(names.values()) + ["coupling"])
    coupling["taggers"] = list(names.values())
    coupling["pairs"] = None if pairs is None else [[names[a], names[b]] for a, b in pairs]
    model = coupling["model"]
    new_pairing = model["@architectures"] == "spacy_mtlave.CouplingModel.v3"
    keys = ("k", "n_buckets", "label_dim", "label_init_std", "tok2vec") + (("score",) if new_pairing else ())
    coupling["model"] = {
        "@architectures": "spacy_mtlave.GroupCouplingModel.v2" if new_pairing else "spacy_mtlave.GroupCouplingModel.v1",
        **{key: model[key] for key in keys if key in model},
    }
    for split in ("train", "dev"):
        config["corpora"][split]["paths"] = {slugify(v): str(paths[split]) for v, paths in corpora.items()}
    for key in [k for k in config["paths"] if k[:-1] in ("train", "dev") and k[-1].isdigit()]:
        del config["paths"][key]
    balanced = config["training"]["batcher"]["@batchers"] == "spacy_mtlave.vertical_batcher.v2"
    config["training"]["batcher"] = {
        "@batchers": "spacy_mtlave.group_batcher.v2" if balanced else "spacy_mtlave.group_batcher.v1",
        "size": config["training"]["batcher"]["size"],
        "pairs": None if pairs is None else [list(p) for p in pairs],
    }
    weights = {k: v for k, v in config["training"]["score_weights"].items() if not any(k.endswith(f"_{name}") for name in old)}
    for name in names.values():
        weights[f"ave_macro_f_{name}"] = round(1.0 / len(names), 4)
        weights[f"ents_f_{name}"] = 0.0
    config["training"]["score_weights"] = weights
    config["training"]["eval_frequency"] = int(config["training"]["eval_frequency"]) * math.ceil(len(names) / 2)
    return config


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
) -> Dict[str, Path]:
    """Train the verticals of ``corpus_dirs`` jointly; write one pipeline per vertical to ``OUTPUT_DIR/<slug>``, the
    joint config to ``OUTPUT_DIR/group.cfg``, the label-label attention of every coupled pair to
    ``OUTPUT_DIR/attention/<slug>+<slug>.json`` and ``run.json`` (naming the template config). ``partners`` > 0 couples each vertical only with
    its ``partners`` best partners of :func:`spacy_mtlave.partners.suggest_partners` (0: every pair).
    Returns {vertical: pipeline dir}."""
    from .partners import partner_pairs, suggest_partners

    if coupling not in MODES:
        raise ValueError(f"--coupling must be one of {', '.join(MODES)}, got {coupling!r}")
    if len(corpus_dirs) < 2:
        raise ValueError(f"train-group needs at least two corpora, got {len(corpus_dirs)}")
    if partners < 0:
        raise ValueError(f"--partners must be >= 0, got {partners}")
    dirs = [Path(d) for d in corpus_dirs]
    paths = [corpus_paths(d) for d in dirs]
    verticals = [corpus_vertical(p["train"]) for p in paths]
    seen: Dict[str, Path] = {}
    for vertical, d in zip(verticals, dirs):
        if slugify(vertical) in seen:
            raise ValueError(f"{seen[slugify(vertical)]} and {d} are both vertical {vertical!r}; train-group needs different verticals")
        seen[slugify(vertical)] = d
    vectors = ensure_glove_vectors(vectors)
    pairs = None
    if partners:
        pairs = partner_pairs(suggest_partners(dict(zip(verticals, dirs)), vectors), partners)
    config = config_path(config, "pair.cfg")
    template = util.load_config(config, interpolate=False)
    if "coupling" not in template["components"] or len(template["components"]["coupling"].get("taggers", [])) < 1:
        raise ValueError(f"{config}: train-group needs a pair config with a 'coupling' component naming its taggers")
    joint_config = group_config(template, dict(zip(verticals, paths)), pairs)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    joint_config.to_disk(output_dir / "group.cfg")
    settings: Dict[str, Any] = {"paths.vectors": str(vectors), "system.seed": seed, "components.coupling.mode": coupling}
    if max_steps is not None:
        settings["training.max_steps"] = max_steps
    settings.update(overrides or {})
    settings.update(checkpoint_settings(output_dir / "group.cfg", output_dir / "joint"))
    spacy_train(output_dir / "group.cfg", output_dir / "joint", overrides=settings, use_gpu=gpu_id)
    joint = output_dir / "joint" / "model-best"
    if coupling != "none":
        (output_dir / "attention").mkdir(exist_ok=True)
        for attention in label_attention(joint, [p["train"] for p in paths]):
            a, b = attention["verticals"]
            srsly.write_json(output_dir / "attention" / f"{slugify(a)}+{slugify(b)}.json", attention)
    outputs = {
        v: split_vertical(joint, f"tagger_{slugify(v)}", output_dir / slugify(v), selected_checkpoint(output_dir / "joint", f"tagger_{slugify(v)}"))
        for v in verticals
    }
    recorded = dict(overrides or {}, **({"partners": partners} if partners else {}))  # names the system in reports
    write_run_info(output_dir, "group", coupling, seed, config, {v: (outputs[v], d) for v, d in zip(verticals, dirs)}, recorded)
    return outputs
