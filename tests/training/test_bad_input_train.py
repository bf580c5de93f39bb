"""Issue 17, the train commands: corpus and config problems are one-line errors before training (cases 13, 14, 16 of
the issue), and an empty dev.spacy has a stated fallback."""
import json
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_mtlave.training.corpus import training_paths
from spacy_mtlave.training.overrides import (
    check_overrides,
    load_training_config,
    parse_overrides,
)
from spacy_mtlave.training.train import CONFIG_DIR, train_vertical

from ..helpers import TINY, assert_one_line_error, invoke, make_docs


def corpus(path, train, dev):
    """A corpus folder with the given train and dev docs."""
    path.mkdir(parents=True, exist_ok=True)
    DocBin(docs=train, store_user_data=True).to_disk(path / "train.spacy")
    DocBin(docs=dev, store_user_data=True).to_disk(path / "dev.spacy")
    return path


def coffee(n, seed=0):
    return make_docs(spacy.blank("en"), "Coffee", n, seed)


def train_cli(data_dir, corpus_dir, output, *extra, command="train"):
    corpora = [corpus_dir] if command == "train" else [corpus_dir, data_dir / "tea"]
    return invoke(command, *corpora, output, "--vectors", data_dir / "vectors", "--max-steps", 2, *extra)


# 13: the corpus, before training ---------------------------------------------------------------------------------


def test_a_train_spacy_without_docs_is_one_line_before_training(data_dir, tmp_path):
    folder = corpus(tmp_path / "empty", [], coffee(3))
    assert_one_line_error(train_cli(data_dir, folder, tmp_path / "out"), "empty/train.spacy: no training docs")
    assert not (tmp_path / "out").exists()


def test_a_mixed_vertical_corpus_is_one_line_before_training(data_dir, tmp_path):
    tea = make_docs(spacy.blank("en"), "Tea", 5, 1)
    folder = corpus(tmp_path / "mixed", coffee(5) + tea, coffee(2))
    result = train_cli(data_dir, folder, tmp_path / "out")
    assert_one_line_error(result, "docs of several verticals ['Coffee', 'Tea']")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("which", ["train", "dev"])
def test_a_corrupted_spacy_file_is_named(data_dir, tmp_path, which):
    folder = corpus(tmp_path / "broken", coffee(5), coffee(2))
    (folder / f"{which}.spacy").write_bytes(b"not a DocBin")
    assert_one_line_error(train_cli(data_dir, folder, tmp_path / "out"), f"broken/{which}.spacy: not a readable .spacy file ([E1014]")


def test_an_empty_dev_spacy_falls_back_to_train_with_a_warning(tmp_path):
    folder = corpus(tmp_path / "small", coffee(5), [])
    said = []
    paths = training_paths(folder, log=said.append)
    assert paths == {"train": folder / "train.spacy", "dev": folder / "train.spacy"}
    assert said == [f"{folder / 'dev.spacy'}: no docs; evaluating and choosing the best checkpoint on {folder / 'train.spacy'} instead"]
    full = corpus(tmp_path / "full", coffee(5), coffee(2))
    assert training_paths(full, log=said.append)["dev"] == full / "dev.spacy" and len(said) == 1


def test_training_with_an_empty_dev_spacy_is_scored_on_train(data_dir, tmp_path, capsys):
    folder = corpus(tmp_path / "coffee", coffee(40), [])
    best = train_vertical(folder, tmp_path / "out", vectors=data_dir / "vectors", max_steps=20, overrides=TINY)
    assert "no docs; evaluating and choosing the best checkpoint on" in capsys.readouterr().out
    meta = json.loads((best / "meta.json").read_text())
    assert meta["performance"]["ents_f"] > 0


# 14: overrides and configs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra,message", [
    (["--foo", "5"], "no such option: --foo"),
    (["--training.max_step", "5"], "--training.max_step: no such setting in"),
    (["--nosection.key", "5"], "--nosection.key: no such setting"),
    (["--training.max_steps"], "--training.max_steps: missing value"),
    (["--training.max_steps", "many"], "--training.max_steps: expected a number (the config has 0), got 'many'"),
    (["--components.ave_tagger.bio_constraints", "3"], "expected true or false, got 3"),
    (["stray"], "unexpected argument 'stray'"),
])
def test_bad_overrides_are_one_line_before_training(data_dir, tmp_path, extra, message):
    assert_one_line_error(train_cli(data_dir, data_dir / "coffee", tmp_path / "out", *extra), message)
    assert not (tmp_path / "out").exists()


def test_a_misspelt_override_is_suggested_its_setting(data_dir, tmp_path):
    result = train_cli(data_dir, data_dir / "coffee", tmp_path / "out", "--training.max_step", "5")
    assert_one_line_error(result, "(did you mean --training.max_steps?)")


@pytest.mark.parametrize("command", ["train-pair", "train-group"])
def test_the_joint_commands_check_overrides_against_the_joint_config(data_dir, tmp_path, command):
    result = train_cli(data_dir, data_dir / "coffee", tmp_path / "out", "--components.coupling.thresh", "high", command=command)
    assert_one_line_error(result, "--components.coupling.thresh: expected a number (the config has 0.8), got 'high'")
    result = train_cli(data_dir, data_dir / "coffee", tmp_path / "out", "--training.max_step", "5", command=command)
    assert_one_line_error(result, "--training.max_step: no such setting in")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content,message", [
    ("garbage", "not a spaCy config (Config validation error"),
    ("[paths]\ntrain = null\n", "not a spaCy training config (no [nlp], [components], [corpora], [training] section)"),
    ("[x]\n[x]\n", "not a spaCy config (While reading from"),
])
def test_a_garbage_config_is_one_line(data_dir, tmp_path, content, message):
    config = tmp_path / "my.cfg"
    config.write_text(content)
    assert_one_line_error(train_cli(data_dir, data_dir / "coffee", tmp_path / "out", "--config", config), "my.cfg: " + message)
    config.write_bytes(b"\xff\xfe[nlp]")
    assert_one_line_error(train_cli(data_dir, data_dir / "coffee", tmp_path / "out", "--config", config), "my.cfg: not a spaCy config")


def test_the_test_overrides_and_the_shipped_configs_agree():
    for name in ("single.cfg", "pair.cfg"):
        check_overrides(load_training_config(CONFIG_DIR / name), dict(TINY, **{"training.max_steps": 3, "nlp.batch_size": 64}), CONFIG_DIR / name)


def test_overrides_of_defaults_not_written_in_the_config_are_accepted():
    config = load_training_config(CONFIG_DIR / "pair.cfg")
    del config["components"]["coupling"]["model"]["score"], config["components"]["coupling"]["top_k"]
    check_overrides(config, {"components.coupling.model.score": "marginal", "components.coupling.top_k": 3, "training.annotating_components": []}, Path("pair.cfg"))
    with pytest.raises(ValueError, match="--components.coupling.model.scor: no such setting in pair.cfg"):
        check_overrides(config, {"components.coupling.model.scor": "marginal"}, Path("pair.cfg"))


def test_override_values_are_read_as_spacy_reads_them():
    assert parse_overrides(["--training.max_steps", "20", "--paths.train=x.spacy", "--a.b", "[1, 2]", "--c.d", "null"], env=False) == {
        "training.max_steps": 20, "paths.train": "x.spacy", "a.b": [1, 2], "c.d": None}
