"""train-pair / train-group on any spaCy corpus folder: docs without ``doc._.vertical`` get the vertical from
``--verticals`` or the folder's name."""
import json

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_mtlave.cli import app
from spacy_mtlave.training.train import train_group, train_pair

from ..helpers import TINY, make_docs


def plain_corpus(path, vertical, seed):
    """A corpus as `spacy convert` or the user's own code writes it: no user data, so no doc._.vertical."""
    nlp = spacy.blank("en")
    path.mkdir(parents=True)
    for split, n, s in (("train", 40, seed), ("dev", 8, seed + 100)):
        docs = [nlp.make_doc(d.text) for d in make_docs(nlp, vertical, n, s)]
        gold = make_docs(nlp, vertical, n, s)
        for doc, ref in zip(docs, gold):
            doc.ents = [doc.char_span(e.start_char, e.end_char, label=e.label_) for e in ref.ents]
        DocBin(docs=docs).to_disk(path / f"{split}.spacy")
    return path


@pytest.mark.slow
def test_train_pair_names_unlabelled_corpora_by_folder_or_option(data_dir, tmp_path, capsys):
    a, b = plain_corpus(tmp_path / "beans", "Coffee", 0), plain_corpus(tmp_path / "leaves", "Tea", 1)
    outputs = train_pair(a, b, tmp_path / "by_folder", vectors=data_dir / "vectors", max_steps=4, overrides=TINY)
    assert set(outputs) == {"beans", "leaves"}
    assert "vertical 'beans' from the folder name" in capsys.readouterr().out
    args = ["train-pair", str(a), str(b), str(tmp_path / "by_option"), "--vectors", str(data_dir / "vectors"), "--max-steps", "4", "--verticals", "Coffee,Tea"]
    args += [arg for key, value in TINY.items() for arg in (f"--{key}", json.dumps(value))]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "by_option" / "run.json").read_text())
    assert set(run["verticals"]) == {"Coffee", "Tea"}
    bad = CliRunner().invoke(app, args[:4] + ["--verticals", "Coffee"])
    assert bad.exit_code == 2 and "--verticals names 1 verticals for 2 corpus folders" in bad.output


@pytest.mark.slow
def test_train_group_takes_unlabelled_corpora(data_dir, tmp_path):
    a, b = plain_corpus(tmp_path / "beans", "Coffee", 0), plain_corpus(tmp_path / "leaves", "Tea", 1)
    outputs = train_group([a, b, data_dir / "coffee"], tmp_path / "group", vectors=data_dir / "vectors", max_steps=4, overrides=TINY, verticals=["Arabica", "Green tea", "unused"])
    assert set(outputs) == {"Arabica", "Green tea", "Coffee"}  # a corpus with doc._.vertical keeps its own
