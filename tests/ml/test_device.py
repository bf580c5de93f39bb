"""Device placement for GPU training (spaCy's --gpu-id), checked without a GPU: a module moved to PyTorch's "meta"
device stands in for a CUDA device, and every input built from numpy must land on the module's device."""
import numpy
import torch
from thinc.api import PyTorchWrapper
from thinc.types import Padded
from typer.testing import CliRunner

from spacy_mtlave.cli import app
from spacy_mtlave.ml.coupling_loss import CouplingLoss, PairBatch, PairwiseCouplingLoss
from spacy_mtlave.ml.coupling_model import _coupling_inputs
from spacy_mtlave.ml.crf import CRF
from spacy_mtlave.ml.device import module_device
from spacy_mtlave.ml.embed import CharBiLSTM, _char_inputs
from spacy_mtlave.ml.encoder import BiLSTM, _padded_inputs
from spacy_mtlave.ml.tagger_model import (
    _crf_inputs,
    build_bilstm_crf_tagger,
    crf_module,
    set_n_tags,
)

META = torch.device("meta")


def on_meta(module: torch.nn.Module, convert) -> PyTorchWrapper:
    layer = PyTorchWrapper(module, convert_inputs=convert)
    layer.shims[0]._model = module.to(META)
    return layer


def test_crf_inputs_follow_the_module_device():
    layer = on_meta(CRF(5), _crf_inputs)
    emissions = numpy.zeros((2, 3, 5), dtype="float32")
    args, _ = _crf_inputs(layer, (emissions, numpy.zeros((2, 3), dtype="int64"), numpy.ones((2, 3), dtype=bool)), is_train=True)
    assert [a.device for a in args.args] == [META] * 3
    assert args.args[0].requires_grad and args.args[0].is_leaf


def test_coupling_inputs_follow_the_module_device():
    for module, key in ((CouplingLoss(4, ["O", "B-A"], ["O", "B-B"]), ()), (PairwiseCouplingLoss(4, [["O"], ["O"]], [(0, 1)]), ("0-1",))):
        layer = on_meta(module, _coupling_inputs)
        n, k = 3, 2
        batch = PairBatch(numpy.zeros((n, 4), "float32"), numpy.zeros((n, k, 4), "float32"), numpy.ones((n, k), bool),
                          numpy.zeros(n, "float32"), numpy.zeros((n, k), "float32"), numpy.zeros(n, "int64"), numpy.zeros((n, k), "int64"))
        args, _ = _coupling_inputs(layer, (*key, batch, batch), is_train=True)
        assert args.args[: len(key)] == key
        for converted in args.args[len(key):]:
            assert all(getattr(converted, f).device == META for f in PairBatch._fields if getattr(converted, f) is not None)
            assert converted.s_anchor.requires_grad and converted.s_anchor.is_leaf and not converted.u_anchor.requires_grad


def test_lstm_inputs_follow_the_module_device_with_lengths_on_the_cpu():
    layer = on_meta(CharBiLSTM(4, 3), _char_inputs)
    args, _ = _char_inputs(layer, (numpy.ones((2, 5), "int64"), numpy.array([5, 3]), numpy.array([0, 1, 0])), is_train=True)
    assert [a.device.type for a in args.args] == ["meta", "cpu", "meta"]
    layer = on_meta(BiLSTM(4, 3, 1, 0.0), _padded_inputs)
    Xp = Padded(numpy.zeros((5, 2, 4), "float32"), numpy.array([2, 2, 1, 1, 1], "int32"), numpy.array([5, 2], "int32"), numpy.array([0, 1], "int32"))
    args, _ = _padded_inputs(layer, Xp, is_train=True)
    assert args.args[0].device == META and args.args[1].device.type == "cpu"


def test_resized_modules_stay_on_the_device_of_the_old_one():
    from spacy.pipeline.tok2vec import Tok2VecListener

    model = build_bilstm_crf_tagger(Tok2VecListener("*", 8), nO=3)
    model.get_ref("crf").shims[0]._model = CRF(3).to(META)  # where thinc would have put it on a GPU
    set_n_tags(model, 7)
    assert crf_module(model).n_tags == 7 and module_device(model.get_ref("crf")) == META


def test_gpu_id_without_a_gpu_is_a_clear_error(data_dir, tmp_path):
    result = CliRunner().invoke(app, ["train", str(data_dir / "coffee"), str(tmp_path / "out"), "--vectors", str(data_dir / "vectors"), "--gpu-id", "0"])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ") and "GPU" in result.stderr
