"""Package a trained vertical as an installable wheel (``en_ave_coffee``) with ``spacy package``.

spaCy writes the package directory; the wheel is built from it with ``pip wheel`` (the setuptools backend, no
network), so neither ``build`` nor ``wheel`` needs to be installed. ``spacy package`` derives the requirements from
the config's registered functions: the ``ave_tagger`` factory adds ``spacy-mtlave>=X.Y.0,<X.(Y+1).0``.
"""
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import srsly
from packaging.version import InvalidVersion, Version

from . import __version__
from .vertical import slugify

DEFAULT_NAME = "pipeline"  # spaCy's meta name when the training config sets none


def package_name(model_dir: Path) -> str:
    """The package name without the language prefix: the meta name (``train-pair`` sets ``ave_<slug>``), else
    ``ave_<slug>`` of the model's vertical in the training output's ``run.json``; ValueError if neither exists."""
    model_dir = Path(model_dir)
    meta = srsly.read_json(model_dir / "meta.json")
    if meta.get("name", DEFAULT_NAME) != DEFAULT_NAME:
        return meta["name"]
    run_path = model_dir.parent / "run.json"
    if run_path.is_file():
        for vertical, info in srsly.read_json(run_path)["verticals"].items():
            if (model_dir.parent / info["model"]).resolve() == model_dir.resolve():
                return f"ave_{slugify(vertical)}"
    raise ValueError(f"{model_dir}: the pipeline has no name (meta.json) and no run.json names its vertical; pass --name")


def package_model(model_dir: Path, output_dir: Path, name: Optional[str] = None, version: Optional[str] = None) -> Path:
    """Write ``OUTPUT_DIR/<lang>_<name>-<version>/`` (via ``spacy package``) and its wheel; returns the wheel path.

    ``name`` defaults to :func:`package_name`, ``version`` to the spacy_mtlave version. An existing package
    directory of the same name and version is overwritten.
    """
    from spacy.cli.package import package

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    if not (model_dir / "meta.json").is_file():
        raise ValueError(f"{model_dir}: not a pipeline directory (no meta.json)")
    name = name if name is not None else package_name(model_dir)
    version = version if version is not None else __version__
    lang = srsly.read_json(model_dir / "meta.json").get("lang", "en")
    name = name[len(lang) + 1:] if name.startswith(f"{lang}_") else name  # spaCy's setup.py always prefixes it
    if not (name.isidentifier() and name.isascii() and name.strip("_") == name):
        raise ValueError(f"--name {name!r}: must be ASCII letters, digits and inner underscores (a Python module name)")
    try:
        Version(version)
    except InvalidVersion:
        raise ValueError(f"--version {version!r}: not a package version like 0.1.0") from None
    full_name = f"{lang}_{name}"
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        package(model_dir, output_dir, name=name, version=version, create_sdist=False, create_wheel=False,
                require_parent=True, force=True, silent=True)
    except SystemExit:  # spaCy's msg.fail; silent, so say which step failed
        raise RuntimeError(f"spacy package {model_dir} failed; run 'python -m spacy package {model_dir} {output_dir}' to see why") from None
    package_dir = output_dir / f"{full_name}-{version}"
    dist = package_dir / "dist"
    shutil.rmtree(dist, ignore_errors=True)  # a wheel of an earlier run
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir",
         "--quiet", "--wheel-dir", str(dist), str(package_dir)],
        capture_output=True, text=True,
    )
    if built.returncode != 0:
        errors = [line.strip() for line in (built.stderr + built.stdout).splitlines() if "Error" in line]
        raise RuntimeError(f"pip wheel {package_dir} failed: {errors[-1] if errors else f'exit {built.returncode}'}")
    wheels = list(dist.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"pip wheel wrote {len(wheels)} wheels to {dist}, expected one")
    return wheels[0]
