"""The joint config of N verticals, derived from a pair config (``pair.cfg``): one shared tok2vec, one ``ave_tagger``
head per vertical (copies of the pair config's first tagger), the coupling loss over pairs of verticals
(``GroupCouplingModel``), and batches of two verticals at a time (``group_batcher``) so that a step costs the same
whatever N is."""
import copy
import math
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

from thinc.api import Config

from ..vertical import slugify


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
        if "verticals" in config["corpora"][split]:  # spacy_mtlave.VerticalCorpus.v2: the vertical of unlabelled docs
            config["corpora"][split]["verticals"] = {slugify(v): v for v in corpora}
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
