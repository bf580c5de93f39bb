"""After joint training: one standalone pipeline per vertical, and the trained coupling's label-label attention."""
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from spacy import util

from ..vertical import slugify
from .corpus import create_vertical_corpus_v2


def split_vertical(joint: Path, tagger: str, output_dir: Path, checkpoint: Optional[Path] = None) -> Path:
    """Write the joint pipeline's shared encoder + ``tagger`` as a standalone vertical pipeline (component
    ``ave_tagger``, not bound to a vertical, so it annotates every doc) to output_dir; with ``checkpoint`` (a folder of
    :mod:`spacy_mtlave.training.checkpoints`), the weights of that vertical's own best epoch. The standalone config is
    the joint config's encoder and head; the weights are copied through the components' own serialization."""
    from ..pipeline.tagger import AVETagger
    from .checkpoints import restore_checkpoint

    source = util.load_model(joint)
    if checkpoint is not None:
        restore_checkpoint(source, checkpoint)
    vertical = source.get_pipe(tagger).vertical
    shared = [name for name, pipe in source.pipeline if getattr(pipe, "listeners", None) is not None]
    config = source.config.copy()
    head = dict(config["components"][tagger], vertical=None)
    config["components"] = {**{name: config["components"][name] for name in shared}, "ave_tagger": head}
    config["nlp"]["pipeline"] = shared + ["ave_tagger"]
    config["nlp"]["disabled"] = []
    config["training"]["score_weights"] = {}
    meta = dict(source.meta)
    if vertical is not None:
        meta["name"] = f"ave_{slugify(vertical)}"
        meta["vertical"] = vertical
    nlp = util.load_model_from_config(config, vocab=source.vocab, meta=meta, auto_fill=False, validate=False)
    for name in shared:
        nlp.get_pipe(name).from_bytes(source.get_pipe(name).to_bytes(exclude=["vocab"]), exclude=["vocab"])
    standalone: AVETagger = nlp.get_pipe("ave_tagger")
    standalone.from_bytes(source.get_pipe(tagger).to_bytes(exclude=["vocab"]), exclude=["vocab"])
    nlp.to_disk(output_dir)
    return Path(output_dir)


def trained_attention(joint: Path, train_paths: Sequence[Path], verticals: Optional[Dict[str, str]] = None) -> List[Dict]:
    """The trained coupling's mean label-label attention over the shortlists of the training corpora (read as
    ``v1``, ``v2``, ...; ``verticals`` names the vertical of each for docs without one), one dict per coupled pair."""
    nlp = util.load_model(joint)
    paths = {f"v{i}": str(p) for i, p in enumerate(train_paths, start=1)}
    examples = list(create_vertical_corpus_v2(paths, verticals)(nlp))
    coupling = nlp.get_pipe("coupling")
    coupling.prepare([nlp.get_pipe(name) for name in coupling.cfg["taggers"]], examples)
    return coupling.attention_by_tags()
