"""Corpora of several verticals for ``spacy train``: the ``spacy_mtlave.VerticalCorpus.v1`` reader (keeps
``doc._.vertical`` on the predicted docs) and the folder layout ``convert`` writes (``CORPUS_DIR/{train,dev}.spacy``)."""
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import spacy
from spacy import util
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Corpus, Example
from wasabi import msg

from ..vertical import get_vertical, set_vertical


@util.registry.readers("spacy_mtlave.VerticalCorpus.v1")
def create_vertical_corpus(paths: Dict[str, str], limit: int = 0) -> Callable[[Language], Iterator[Example]]:
    """Examples of several ``.spacy`` files (``paths``: a name for each, e.g. ``v1``, ``v2``), with ``doc._.vertical``
    copied onto the predicted docs so that each vertical-bound tagger annotates only its own docs during evaluation."""
    corpora = [Corpus(paths[key], limit=limit) for key in sorted(paths)]

    def read(nlp: Language) -> Iterator[Example]:
        for corpus in corpora:
            for eg in corpus(nlp):
                set_vertical(eg.predicted, get_vertical(eg.reference))
                yield eg

    return read



@util.registry.readers("spacy_mtlave.VerticalCorpus.v2")
def create_vertical_corpus_v2(paths: Dict[str, str], verticals: Optional[Dict[str, str]] = None, limit: int = 0) -> Callable[[Language], Iterator[Example]]:
    """As v1, for any spaCy corpus: a doc without ``doc._.vertical`` (a ``.spacy`` file from ``spacy convert`` or the
    user's own code) gets ``verticals[name]``, the vertical of the file it was read from, on both its docs."""
    corpora = {key: Corpus(paths[key], limit=limit) for key in sorted(paths)}
    verticals = dict(verticals or {})

    def read(nlp: Language) -> Iterator[Example]:
        for key, corpus in corpora.items():
            for eg in corpus(nlp):
                vertical = get_vertical(eg.reference) or verticals.get(key)
                set_vertical(eg.reference, vertical)
                set_vertical(eg.predicted, vertical)
                yield eg

    return read


def read_docbin(path: Path, vocab=None) -> List[Doc]:
    """The docs of a ``.spacy`` file (vocab: a blank English one by default); ValueError naming the file when it is a
    folder, missing, or not a DocBin (spaCy's E1014 does not name it)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, expected a .spacy file")
    if not path.is_file():
        raise ValueError(f"{path}: not found")
    try:
        return list(DocBin().from_disk(path).get_docs(vocab if vocab is not None else spacy.blank("en").vocab))
    except (ValueError, OSError) as err:
        reason = str(err).split(". ")[0].strip() or type(err).__name__
        raise ValueError(f"{path}: not a readable .spacy file ({reason})") from None


def corpus_paths(corpus_dir: Path) -> Dict[str, Path]:
    """``CORPUS_DIR/{train,dev}.spacy`` as written by ``convert``; ValueError naming the missing file."""
    corpus_dir = Path(corpus_dir)
    paths = {split: corpus_dir / f"{split}.spacy" for split in ("train", "dev")}
    for path in paths.values():
        if not path.is_file():
            raise ValueError(f"{path}: not found (expected {corpus_dir}/train.spacy and dev.spacy, see 'convert')")
    return paths


def corpus_vertical(path: Path, required: bool = True) -> Optional[str]:
    """The one vertical of a ``.spacy`` training file; ValueError when it is empty, mixed or (if ``required``)
    unlabelled; None for a file whose docs carry no vertical when not ``required``."""
    docs = read_docbin(path)
    if not docs:
        raise ValueError(f"{path}: no training docs")
    verticals = {get_vertical(doc) for doc in docs}
    if verticals == {None} and not required:
        return None
    if None in verticals:
        raise ValueError(f"{path}: docs without a vertical (doc._.vertical); write corpora with 'convert' or name the vertical")
    if len(verticals) > 1:
        raise ValueError(f"{path}: docs of several verticals {sorted(verticals)}; a corpus folder holds one vertical")
    return verticals.pop()


def training_paths(corpus_dir: Path, log: Callable[[str], None] = msg.warn) -> Dict[str, Path]:
    """:func:`corpus_paths`, with ``train.spacy`` standing in for a ``dev.spacy`` without docs (``convert`` writes one
    for a vertical with fewer examples than ``--dev-every``): dev scores and the choice of the best checkpoint are
    then on the training docs, which the log says. Without it every dev score is 0 and the first checkpoint wins."""
    paths = corpus_paths(corpus_dir)
    if not read_docbin(paths["dev"]):
        log(f"{paths['dev']}: no docs; evaluating and choosing the best checkpoint on {paths['train']} instead")
        paths["dev"] = paths["train"]
    return paths


def resolve_verticals(corpus_dirs: Sequence[Path], names: Optional[Sequence[str]] = None, log: Callable[[str], None] = msg.info) -> List[str]:
    """The vertical of each corpus folder: its docs' ``doc._.vertical``; for a corpus whose docs carry none (any spaCy
    corpus), ``names[i]`` if given, else the folder's name (said in the log). ValueError for a wrong number of names
    or two folders of the same vertical."""
    if names is not None and len(names) != len(corpus_dirs):
        raise ValueError(f"--verticals names {len(names)} verticals for {len(corpus_dirs)} corpus folders")
    verticals = []
    for i, corpus_dir in enumerate(corpus_dirs):
        vertical = corpus_vertical(corpus_paths(corpus_dir)["train"], required=False)
        if vertical is None:
            vertical = names[i] if names else Path(corpus_dir).resolve().name
            log(f"{corpus_dir}: docs without doc._.vertical; vertical {vertical!r} from {'--verticals' if names else 'the folder name'}")
        verticals.append(vertical)
    seen: Dict[str, Path] = {}
    for vertical, corpus_dir in zip(verticals, corpus_dirs):
        if vertical in seen:
            raise ValueError(f"{seen[vertical]} and {corpus_dir} are both vertical {vertical!r}; joint training needs different verticals")
        seen[vertical] = Path(corpus_dir)
    return verticals
