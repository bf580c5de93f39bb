"""``init-config``: a starting training config, copied from the configs shipped inside the package."""
import sys
from pathlib import Path
from typing import Optional

from ..outputs import write_text
from .train import shipped_config

PIPELINES = ("single", "pair", "group")
BACKBONES = {"glove": "", "minilm": "_trf"}


def config_name(pipeline: str, backbone: str) -> str:
    """The shipped config for a pipeline kind and a backbone (``group`` runs derive their config from ``pair``)."""
    if pipeline not in PIPELINES:
        raise ValueError(f"--pipeline must be one of {', '.join(PIPELINES)}, got {pipeline!r}")
    if backbone not in BACKBONES:
        raise ValueError(f"--backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
    return f"{'single' if pipeline == 'single' else 'pair'}{BACKBONES[backbone]}.cfg"


def write_config(output: Path, pipeline: str = "pair", backbone: str = "glove") -> Optional[Path]:
    """Write the config to ``output`` (stdout for ``-``); returns the path written (None for stdout). The folder must
    exist; an existing file is replaced whole (written to a temporary file first)."""
    text = shipped_config(config_name(pipeline, backbone)).read_text(encoding="utf8")
    if str(output) == "-":
        sys.stdout.write(text)
        return None
    return write_text(output, text)
