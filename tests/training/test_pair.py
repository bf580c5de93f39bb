"""Multi-task training: the joint pipeline, the coupling component, train-pair end to end."""
import json
import warnings

import numpy
import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_mtlave.cli import app
from spacy_mtlave.training.batchers import create_vertical_batcher
from spacy_mtlave.training.train import train_pair
from spacy_mtlave.vertical import get_vertical

from ..helpers import TINY, joint_nlp, train_examples, write_corpus


def test_corpus_reader_puts_the_vertical_on_predicted_docs(data_dir):
    nlp = spacy.blank("en")
    examples = train_examples(nlp, data_dir)
    assert len(examples) == 120
    assert all(get_vertical(eg.predicted) == get_vertical(eg.reference) for eg in examples)
    assert {get_vertical(eg.predicted) for eg in examples} == {"Coffee", "Tea"}


def test_vertical_batcher_draws_from_each_vertical(data_dir):
    examples = train_examples(spacy.blank("en"), data_dir)
    examples = examples[:50] + examples[60:75]  # 50 Coffee, 15 Tea
    batches = list(create_vertical_batcher(size=20)(examples))
    assert sorted(id(eg) for b in batches for eg in b) == sorted(id(eg) for eg in examples)
    counts = [(sum(get_vertical(eg.reference) == "Coffee" for eg in b), sum(get_vertical(eg.reference) == "Tea" for eg in b)) for b in batches]
    assert counts == [(20, 15), (20, 0), (10, 0)]


def test_with_weight_zero_the_pair_loss_is_the_sum_of_single_task_losses(data_dir):
    nlp = joint_nlp(data_dir, **{"components.coupling.weight": 0.0})
    examples = train_examples(nlp, data_dir)
    batch = examples[:10] + examples[60:70]
    expected = 0.0
    tok2vec = nlp.get_pipe("tok2vec").model
    for name, own in (("tagger_v1", batch[:10]), ("tagger_v2", batch[10:])):
        tagger = nlp.get_pipe(name)
        scores = tagger.model.get_ref("emitter").predict(tok2vec.predict([eg.predicted for eg in own]))
        expected += tagger.get_loss(own, scores)[0]
    losses = nlp.update(batch, drop=0.0, sgd=None)
    assert losses["coupling"] == 0.0
    assert losses["tagger_v1"] + losses["tagger_v2"] == pytest.approx(expected, rel=1e-4)


def _params(nlp, name):
    model = nlp.get_pipe(name).model
    return [numpy.array(model.get_ref("emitter").layers[0].get_param("W"))] if name != "tok2vec" else [
        numpy.array(node.get_param(p)) for node in model.walk() for p in node.param_names if node.has_param(p)
    ]


def test_coupling_gradient_reaches_heads_in_the_same_update_and_encoder_only_when_weighted(data_dir):
    runs = {}
    for label, overrides in (("weight0", {"components.coupling.weight": 0.0}), ("none", {"components.coupling.mode": "none"}), ("full", {"components.coupling.weight": 10.0})):
        nlp = joint_nlp(data_dir, **overrides)
        assert nlp.pipe_names == ["tok2vec", "coupling", "tagger_v1", "tagger_v2"]
        examples = train_examples(nlp, data_dir)
        optimizer = nlp.create_optimizer()
        nlp.update(examples[:20] + examples[60:80], drop=0.0, sgd=optimizer)
        heads = {name: _params(nlp, name) for name in ("tagger_v1", "tagger_v2")}  # no flush: same update
        # spaCy applies the shared tok2vec's gradient (CRF losses and coupling alike) at its next step: flush it here
        nlp.get_pipe("tok2vec").finish_update(optimizer)
        runs[label] = dict(heads, tok2vec=_params(nlp, "tok2vec"))
    for name in runs["none"]:
        for a, b in zip(runs["none"][name], runs["weight0"][name]):
            numpy.testing.assert_allclose(a, b, atol=1e-6)
        assert any(not numpy.allclose(a, b, atol=1e-6) for a, b in zip(runs["none"][name], runs["full"][name])), name


def test_drawn_pairs_are_in_the_shortlist_and_in_the_batch(data_dir):
    nlp = joint_nlp(data_dir, **{"components.coupling.model": {"@architectures": "spacy_mtlave.CouplingModel.v2", "tok2vec": {"@architectures": "spacy.Tok2VecListener.v1", "width": 32, "upstream": "*"}}})
    assert nlp.get_pipe("coupling").settings["pairing"] == "drawn"
    state = nlp.get_pipe("coupling").states["0-1"]
    assert state.has_pairs
    batch_docs = [numpy.array([0, 3, 5]), numpy.array([1, 2, 7, 9])]
    for direction in (0, 1):
        anchors, columns = state._draw(direction, batch_docs, n_pairs=1000)
        assert len(anchors) > 0
        a_side, p_side = (0, 1) if direction == 0 else (1, 0)
        for anchor, column in zip(anchors, columns):
            partners, _ = state.partners[direction][int(anchor)]
            partner = partners[column]
            assert state.sides[a_side].index[anchor, 0] in batch_docs[a_side]
            assert state.sides[p_side].index[partner, 0] in batch_docs[p_side]


def test_empty_shortlist_warns_and_falls_back_to_hard_sharing(data_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nlp = joint_nlp(data_dir, **{"components.coupling.thresh": 1.5})
        nlp.get_pipe("coupling").states  # built at the first update (the taggers come after the coupling)
    messages = [str(w.message) for w in caught if "shortlist L empty" in str(w.message)]
    assert messages and "thresh=1.5" in messages[0] and "best cosine similarity" in messages[0]
    examples = train_examples(nlp, data_dir)
    losses = nlp.update(examples[:10] + examples[60:70], sgd=nlp.create_optimizer())
    assert losses["coupling"] == 0.0 and losses["tagger_v1"] > 0


@pytest.mark.slow
def test_train_pair_writes_one_pipeline_per_vertical(data_dir, tmp_path):
    outputs = train_pair(data_dir / "coffee", data_dir / "tea", tmp_path / "pair", vectors=data_dir / "vectors", max_steps=40, overrides=TINY)
    assert set(outputs) == {"Coffee", "Tea"}
    for vertical, path in outputs.items():
        nlp = spacy.load(path)
        assert nlp.pipe_names == ["tok2vec", "ave_tagger"]
        assert nlp.meta["vertical"] == vertical
        doc = nlp("Lavazza dark espresso , 12 oz")
        assert all(e.label_ in {"Brand", "Flavor", "Size"} for e in doc.ents)
    attention = json.loads((tmp_path / "pair" / "attention.json").read_text())
    assert attention["verticals"] == ["Coffee", "Tea"]
    n1, n2 = len(attention["tags1"]), len(attention["tags2"])
    assert numpy.array(attention["context_12"]).shape == (n1, n2)
    assert numpy.array(attention["label_21"]).shape == (n2, n1)
    run = json.loads((tmp_path / "pair" / "run.json").read_text())
    assert run["kind"] == "pair" and run["coupling"] == "full" and set(run["verticals"]) == {"Coffee", "Tea"}


def test_train_pair_cli_errors(data_dir, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train-pair", str(tmp_path / "missing"), str(data_dir / "tea"), str(tmp_path / "out")])
    assert result.exit_code == 2 and "train.spacy: not found" in result.output
    result = runner.invoke(app, ["train-pair", str(data_dir / "coffee"), str(data_dir / "coffee"), str(tmp_path / "out")])
    assert result.exit_code == 2 and "both vertical 'Coffee'" in result.output
    empty = write_corpus(tmp_path / "empty", "Tea")
    DocBin().to_disk(empty / "train.spacy")
    result = runner.invoke(app, ["train-pair", str(data_dir / "coffee"), str(empty), str(tmp_path / "out")])
    assert result.exit_code == 2 and "no training docs" in result.output
    result = runner.invoke(app, ["train-pair", str(data_dir / "coffee"), str(data_dir / "tea"), str(tmp_path / "out"), "--coupling", "strong"])
    assert result.exit_code == 2 and "--coupling must be one of" in result.output


@pytest.mark.slow
def test_train_pair_cli_takes_config_overrides(data_dir, tmp_path):
    from spacy_mtlave.evaluation.report import read_run

    extra = [arg for key, value in TINY.items() for arg in (f"--{key}", json.dumps(value))]
    out = tmp_path / "cli"
    args = ["train-pair", str(data_dir / "coffee"), str(data_dir / "tea"), str(out), "--vectors", str(data_dir / "vectors"), "--max-steps", "5"]
    result = CliRunner().invoke(app, args + extra + ["--components.coupling.model.label_init_std", "1.0"])
    assert result.exit_code == 0, result.output
    run = read_run(out)
    assert run.overrides["components.coupling.model.label_init_std"] == 1.0
    assert run.system.startswith("full coupling (") and "label_init_std=1.0" in run.system
    joint = spacy.load(out / "joint" / "model-last")
    assert joint.config["components"]["coupling"]["model"]["label_init_std"] == 1.0


def test_skip_outside_leaves_o_contexts_out_of_the_shortlist(data_dir):
    state = joint_nlp(data_dir, **{"components.coupling.skip_outside": True}).get_pipe("coupling").states["0-1"]
    c1, c2 = state.shortlist.pairs()
    assert len(c1) > 0
    assert (state.sides[0].tags[c1] != 0).all() and (state.sides[1].tags[c2] != 0).all()
    full = joint_nlp(data_dir).get_pipe("coupling").states["0-1"]
    assert (full.sides[0].tags[full.shortlist.pairs()[0]] == 0).any()
