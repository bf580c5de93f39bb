"""Torch device placement of the wrapped modules. thinc puts a ``PyTorchWrapper``'s module on its current torch
device (the GPU after spaCy's ``--gpu-id`` / ``require_gpu``); modules re-sized later and inputs built from numpy
must follow it."""
import itertools

import torch
from thinc.api import Model
from thinc.util import get_torch_default_device


def torch_module(layer: Model) -> torch.nn.Module:
    """The torch module a ``PyTorchWrapper`` layer wraps: the one place that reads thinc's shim (as spacy-transformers
    does, thinc has no public accessor)."""
    return layer.shims[0]._model


def module_device(layer: Model) -> torch.device:
    """The device of a PyTorchWrapper layer's module (thinc's default device if it has no tensors)."""
    module = torch_module(layer)
    tensor = next(itertools.chain(module.parameters(), module.buffers()), None)
    return tensor.device if tensor is not None else get_torch_default_device()


def replace_module(layer: Model, module: torch.nn.Module) -> None:
    """Swap a PyTorchWrapper layer's module for a newly sized one, on the device of the old one."""
    layer.shims[0]._model = module.to(module_device(layer))
