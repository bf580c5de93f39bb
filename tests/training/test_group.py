"""N verticals jointly (train-group, GroupCouplingModel, group batcher) and suggest-partners."""
import json
import random
from collections import Counter

import numpy
import pytest
import spacy
import torch
from spacy.training.initialize import init_nlp
from spacy.util import fix_random_seed, load_config, load_config_from_str
from typer.testing import CliRunner

from spacy_mtlave.cli import app
from spacy_mtlave.evaluation.report import read_run
from spacy_mtlave.ml.coupling_loss import CouplingLoss, PairBatch, PairwiseCouplingLoss
from spacy_mtlave.ml.device import torch_module
from spacy_mtlave.training.batchers import create_group_batcher
from spacy_mtlave.training.corpus import corpus_paths, create_vertical_corpus
from spacy_mtlave.training.group_config import group_config
from spacy_mtlave.training.partner_verticals import (
    name_similarity,
    partner_pairs,
    suggest_partners,
)
from spacy_mtlave.training.train import CONFIG_DIR, train_group
from spacy_mtlave.vertical import get_vertical

from ..helpers import TINY, write_corpus

VERTICALS = {"Coffee": "coffee", "Tea": "tea", "Cocoa": "cocoa"}


@pytest.fixture(scope="module")
def group_dir(data_dir, tmp_path_factory):
    """The session's Coffee and Tea corpora plus a third vertical, Cocoa."""
    root = tmp_path_factory.mktemp("group")
    write_corpus(root / "cocoa", "Cocoa", seed=2)
    return {"Coffee": data_dir / "coffee", "Tea": data_dir / "tea", "Cocoa": root / "cocoa"}


def group_nlp(group_dir, data_dir, pairs=None, **overrides):
    config = group_config(load_config(CONFIG_DIR / "pair.cfg", interpolate=False), {v: corpus_paths(d) for v, d in group_dir.items()}, pairs)
    settings = dict(TINY, **{"paths.vectors": str(data_dir / "vectors"), "training.dropout": 0.0, "components.tok2vec.model.encode.dropout": 0.0})
    settings.update(overrides)
    fix_random_seed(0)
    return init_nlp(load_config_from_str(config.to_str(), overrides=settings, interpolate=False))


def examples_of(nlp, group_dir):
    return list(create_vertical_corpus({v: str(d / "train.spacy") for v, d in group_dir.items()})(nlp))


def test_group_config_has_one_head_per_vertical(group_dir):
    template = load_config(CONFIG_DIR / "pair.cfg", interpolate=False)
    config = group_config(template, {v: corpus_paths(d) for v, d in group_dir.items()}, pairs=[("Coffee", "Tea")])
    heads = ["tagger_coffee", "tagger_tea", "tagger_cocoa"]
    assert config["nlp"]["pipeline"] == ["tok2vec", "coupling", *heads]
    assert [config["components"][h]["vertical"] for h in heads] == ["Coffee", "Tea", "Cocoa"]
    assert "tagger_v1" not in config["components"]
    coupling = config["components"]["coupling"]
    assert coupling["taggers"] == heads and coupling["pairs"] == [["tagger_coffee", "tagger_tea"]]
    assert coupling["model"]["@architectures"] == "spacy_mtlave.GroupCouplingModel.v2"
    assert coupling["model"]["label_init_std"] == template["components"]["coupling"]["model"]["label_init_std"]
    assert coupling["model"]["score"] == template["components"]["coupling"]["model"]["score"]
    assert config["training"]["batcher"]["@batchers"] == "spacy_mtlave.group_batcher.v2"
    weights = config["training"]["score_weights"]
    assert sum(weights[f"ave_macro_f_{h}"] for h in heads) == pytest.approx(1.0, abs=1e-3)
    assert not any(key.endswith("_tagger_v1") for key in weights)
    assert config["training"]["eval_frequency"] == 2 * template["training"]["eval_frequency"]
    assert set(config["corpora"]["dev"]["paths"]) == {"coffee", "tea", "cocoa"}


@pytest.mark.parametrize("pairs", [None, [["Coffee", "Tea"], ["Tea", "Cocoa"]]])
def test_group_batcher_uses_each_example_once_two_verticals_at_a_time(group_dir, pairs):
    examples = examples_of(spacy.blank("en"), group_dir)
    examples = examples[:50] + examples[60:75] + examples[120:180]  # 50 Coffee, 15 Tea, 60 Cocoa
    random.seed(0)
    batches = list(create_group_batcher(size=10, pairs=pairs)(examples))
    assert sorted(id(eg) for b in batches for eg in b) == sorted(id(eg) for eg in examples)
    allowed = None if pairs is None else {frozenset(p) for p in pairs}
    together = Counter()
    for batch in batches:
        counts = Counter(get_vertical(eg.reference) for eg in batch)
        assert 1 <= len(counts) <= 2 and max(counts.values()) <= 10
        if len(counts) == 2:
            together[frozenset(counts)] += 1
            assert allowed is None or frozenset(counts) in allowed
    assert len(together) >= 2  # the pairing changes from round to round


def test_pairwise_loss_shares_the_label_table_and_matches_a_pair_loss():
    tags = [["O", "B-Brand", "I-Brand"], ["O", "B-Brand", "B-Size"], ["O", "B-Flavor"]]
    torch.manual_seed(0)
    group = PairwiseCouplingLoss(4, tags, [(0, 1), (1, 2)])
    assert group.pairs["0-1"].label_table is group.pairs["1-2"].label_table
    n_params = sum(p.numel() for p in group.parameters())
    assert n_params == 4096 * 32 + 2 * 2 * 4  # one label table, (a1, a2) per pair
    pair = CouplingLoss(4, tags[1], tags[2])
    pair.load_state_dict(group.pairs["1-2"].state_dict())
    rng = numpy.random.RandomState(0)

    def batch(n_a, n_p):
        mask = torch.ones(3, 2, dtype=torch.bool)
        return PairBatch(torch.tensor(rng.randn(3, 4), dtype=torch.float32), torch.tensor(rng.randn(3, 2, 4), dtype=torch.float32), mask,
                         torch.tensor(rng.randn(3), dtype=torch.float32), torch.tensor(rng.randn(3, 2), dtype=torch.float32),
                         torch.tensor(rng.randint(0, n_a, 3)), torch.tensor(rng.randint(0, n_p, (3, 2))))

    b12, b21 = batch(3, 2), batch(2, 3)
    assert torch.allclose(group("1-2", b12, b21), pair(b12, b21))


def _batch(examples, vertical_a, vertical_b, start=0, n=10):
    pick = lambda v: [eg for eg in examples if get_vertical(eg.reference) == v][start:start + n]  # noqa: E731
    return pick(vertical_a) + pick(vertical_b)


def test_group_coupling_updates_only_the_pairs_in_the_batch(group_dir, data_dir):
    nlp = group_nlp(group_dir, data_dir)
    coupling = nlp.get_pipe("coupling")
    assert set(coupling.states) == {"0-1", "0-2", "1-2"} and all(s.has_pairs for s in coupling.states.values())
    module = coupling.module
    before = {key: m.a1.detach().clone() for key, m in module.pairs.items()}
    table = module.pairs["0-1"].label_table.detach().clone()
    examples = examples_of(nlp, group_dir)
    losses = nlp.update(_batch(examples, "Coffee", "Cocoa"), sgd=nlp.create_optimizer())
    assert losses["coupling"] > 0 and losses["tagger_coffee"] > 0 and losses["tagger_cocoa"] > 0 and losses["tagger_tea"] == 0
    after = {key: m.a1.detach() for key, m in module.pairs.items()}
    assert not torch.equal(before["0-2"], after["0-2"])  # Coffee + Cocoa was coupled
    assert torch.equal(before["0-1"], after["0-1"]) and torch.equal(before["1-2"], after["1-2"])
    assert not torch.equal(table, module.pairs["1-2"].label_table.detach())  # the shared table moved for every pair


@pytest.mark.parametrize("optimizer,drifts", [("spacy_mtlave.LazyAdam.v1", False), ("Adam.v1", True)])
def test_what_gets_no_gradient_does_not_move_over_several_steps(group_dir, data_dir, optimizer, drifts):
    """After a Coffee + Tea update, three Coffee + Cocoa updates give Tea's head (emission layer, CRF) and the attention
    vectors of the pair Coffee + Tea no gradient: with LazyAdam they stay put; thinc's Adam moves them by momentum (the bug)."""
    nlp = group_nlp(group_dir, data_dir, **{"training.optimizer.@optimizers": optimizer})
    sgd = nlp.create_optimizer()
    examples = examples_of(nlp, group_dir)
    nlp.update(_batch(examples, "Coffee", "Tea"), sgd=sgd)
    module = nlp.get_pipe("coupling").module  # sized at the first update

    def frozen():
        head = nlp.get_pipe("tagger_tea").model
        crf = torch_module(head.get_ref("crf"))
        return [numpy.array(head.get_ref("emitter").layers[0].get_param("W")), crf.transitions.detach().numpy().copy(),
                *(getattr(module.pairs["0-1"], a).detach().numpy().copy() for a in ("a1", "a2"))]

    before = frozen()
    for step in range(3):
        nlp.update(_batch(examples, "Coffee", "Cocoa", start=10 * step), sgd=sgd)
    after = frozen()
    moved = [not numpy.array_equal(a, b) for a, b in zip(before, after)]
    assert all(moved) if drifts else not any(moved)


def test_group_coupling_pairs_restrict_the_shortlists(group_dir, data_dir):
    nlp = group_nlp(group_dir, data_dir, pairs=[("Coffee", "Cocoa")])
    assert set(nlp.get_pipe("coupling").states) == {"0-2"}
    assert list(nlp.get_pipe("coupling").module.pairs) == ["0-2"]


def test_more_than_two_taggers_need_the_group_model(data_dir):
    from spacy.pipeline.tok2vec import Tok2VecListener

    from spacy_mtlave.ml.coupling_model import build_coupling_model_v2
    from spacy_mtlave.pipeline.coupling import make_ave_coupling

    nlp = spacy.blank("en")
    model = build_coupling_model_v2(Tok2VecListener("*", 8))
    with pytest.raises(ValueError, match="GroupCouplingModel"):
        make_ave_coupling(nlp, "coupling", model, ["a", "b", "c"], None, "full", 1.0, 0.8, 1, 10, 30, False)


@pytest.mark.slow
def test_train_group_writes_one_pipeline_per_vertical(group_dir, data_dir, tmp_path):
    out = tmp_path / "group"
    outputs = train_group(list(group_dir.values()), out, vectors=data_dir / "vectors", max_steps=30, overrides=TINY)
    assert set(outputs) == set(VERTICALS)
    for vertical, path in outputs.items():
        nlp = spacy.load(path)
        assert nlp.pipe_names == ["tok2vec", "ave_tagger"] and nlp.meta["vertical"] == vertical
        assert all(e.label_ in {"Brand", "Flavor", "Size"} for e in nlp("Acme dark cocoa , 12 oz").ents)
    attention = sorted(p.name for p in (out / "attention").iterdir())
    assert attention == ["coffee+cocoa.json", "coffee+tea.json", "tea+cocoa.json"]
    a = json.loads((out / "attention" / "tea+cocoa.json").read_text())
    assert a["verticals"] == ["Tea", "Cocoa"]
    assert numpy.array(a["label_12"]).shape == (len(a["tags1"]), len(a["tags2"]))
    run = read_run(out)
    assert run.kind == "group" and run.system.startswith("group full coupling (") and set(run.verticals) == set(VERTICALS)
    joint = spacy.load(out / "joint" / "model-best")  # the grouped coupling round-trips through disk
    assert joint.get_pipe("coupling").cfg["pair_ids"] == [[0, 1], [0, 2], [1, 2]]


@pytest.mark.slow
def test_train_group_cli(group_dir, data_dir, tmp_path):
    runner = CliRunner()
    extra = [arg for key, value in TINY.items() for arg in (f"--{key}", json.dumps(value))]
    out = tmp_path / "cli"
    dirs = [str(d) for d in group_dir.values()]
    result = runner.invoke(app, ["train-group", *dirs, str(out), "--vectors", str(data_dir / "vectors"), "--max-steps", "4", "--partners", "1", "--coupling", "cce", *extra])
    assert result.exit_code == 0, result.output
    joint = spacy.load(out / "joint" / "model-last")
    assert joint.config["components"]["tok2vec"]["model"]["encode"]["hidden_width"] == 32  # the override reached the config
    pairs = joint.config["components"]["coupling"]["pairs"]
    assert 1 <= len(pairs) <= 3 and all(len(p) == 2 for p in pairs)
    assert read_run(out).system.startswith("group cce (") and "partners=1" in read_run(out).system
    result = runner.invoke(app, ["train-group", dirs[0], str(out)])
    assert result.exit_code == 2 and "at least two CORPUS_DIRs" in result.output
    result = runner.invoke(app, ["train-group", dirs[0], dirs[0], str(out)])
    assert result.exit_code == 2 and "both vertical 'Coffee'" in result.output
    result = runner.invoke(app, ["train-group", *dirs, str(out), "--partners", "-1"])
    assert result.exit_code == 2 and "--partners must be >= 0" in result.output


def test_name_similarity():
    assert name_similarity(Counter({"Brand": 3}), ["brand", "Size"]) == pytest.approx(1.0)
    assert name_similarity(Counter({"Brand": 3}), ["Flavor"]) < 0.2
    mixed = name_similarity(Counter({"Brand": 3, "Flavor": 1}), ["Brand"])
    assert mixed == pytest.approx((3 * 1.0 + name_similarity(Counter({"Flavor": 1}), ["Brand"])) / 4)
    assert name_similarity(Counter(), ["Brand"]) == 0.0


def test_suggest_partners_ranks_the_vertical_with_the_same_attributes_first(group_dir, data_dir, tmp_path):
    from spacy.tokens import DocBin

    from spacy_mtlave.vertical import set_vertical

    # a fourth vertical whose attributes (Model) and words share nothing with the others
    nlp = spacy.blank("en")
    docs = []
    for i in range(30):
        doc = nlp.make_doc(f"zx{i} widget")
        doc.ents = [doc.char_span(0, len(f"zx{i}"), label="Model")]
        set_vertical(doc, "Widget")
        docs.append(doc)
    (tmp_path / "widget").mkdir()
    for split in ("train", "dev"):
        DocBin(docs=docs, store_user_data=True).to_disk(tmp_path / "widget" / f"{split}.spacy")
    corpora = dict(group_dir, Widget=tmp_path / "widget")
    suggestions = suggest_partners(corpora, data_dir / "vectors")
    assert set(suggestions) == set(corpora)
    for vertical in VERTICALS:
        rows = suggestions[vertical]
        assert [r["partner"] for r in rows][-1] == "Widget"
        assert rows[0]["name"] == pytest.approx(1.0) and 0.0 < rows[0]["density"] <= 1.0
        assert all(0.0 <= r["score"] <= 1.0 for r in rows)
        assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert suggestions["Widget"][0]["density"] == 0.0  # out-of-vocabulary words never match
    pairs = partner_pairs(suggestions, 1)
    assert all(a < b for a, b in pairs) and len(pairs) <= 4


def test_suggest_partners_cli(group_dir, data_dir, tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    for vertical, d in group_dir.items():
        (root / d.name).symlink_to(d)
    result = CliRunner().invoke(app, ["suggest-partners", str(root), "--vectors", str(data_dir / "vectors"), "--output", str(tmp_path / "p.json"), "--top", "2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n| ") == 6  # two partners for each of three verticals
    assert set(json.loads((tmp_path / "p.json").read_text())) == set(VERTICALS)
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "coffee").symlink_to(group_dir["Coffee"])
    result = CliRunner().invoke(app, ["suggest-partners", str(tmp_path / "one"), "--vectors", str(data_dir / "vectors")])
    assert result.exit_code == 2 and "needs at least two vertical folders" in result.output
