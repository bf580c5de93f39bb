"""End to end: package the tiny trained vertical as a wheel, install it offline into a fresh virtual environment,
load it by name and extract with it there."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spacy_mtlave import __version__
from spacy_mtlave.cli import app
from spacy_mtlave.package import package_model, package_name

runner = CliRunner()


def run(args, **kwargs) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, timeout=300, **kwargs)


@pytest.mark.slow
def test_package_install_load_extract(trained_single, tmp_path):
    result = runner.invoke(app, ["package", str(trained_single), str(tmp_path / "packages")])
    assert result.exit_code == 0, result.output
    wheel = Path(result.stdout.strip().splitlines()[-1])
    assert wheel.name == f"en_ave_coffee-{__version__}-py3-none-any.whl" and wheel.is_file()
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"en_ave_coffee-{__version__}.dist-info/METADATA").decode()
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any(r.startswith("spacy-mtlave") and f">={__version__}" in r for r in requires), requires

    venv = tmp_path / "venv"
    created = run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    installed = run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", wheel])
    assert installed.returncode == 0, installed.stderr

    loaded = run([python, "-c", (
        "import json, spacy, en_ave_coffee\n"
        "nlp = spacy.load('en_ave_coffee')\n"
        "doc = nlp('Acme dark coffee , 12 oz')\n"
        "print(json.dumps({'file': en_ave_coffee.__file__, 'ents': [[e.text, e.label_] for e in doc.ents]}))"
    )])
    assert loaded.returncode == 0, loaded.stderr
    info = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert Path(info["file"]).resolve().is_relative_to(venv.resolve())
    assert ["12 oz", "Size"] in info["ents"]

    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps({"id": "a", "input": "Lavazza dark beans , 1 lb"}) + "\n{broken\n", encoding="utf-8")
    extracted = run([python, "-m", "spacy_mtlave", "extract", "en_ave_coffee", source, target])
    assert extracted.returncode == 0, extracted.stderr
    assert extracted.stderr.strip().splitlines()[-1].startswith("2 lines, 1 records, 1 errors")
    first, second = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert first["id"] == "a" and first["attributes"]["Size"][0]["value"] == "1 lb"
    assert second["line"] == 2 and "invalid JSON" in second["error"]


def test_package_name_from_run_json_or_meta(trained_single, tmp_path):
    assert package_name(trained_single) == "ave_coffee"  # train_vertical's run.json names the vertical Coffee
    copy = tmp_path / "model"
    copy.mkdir()
    meta = json.loads((trained_single / "meta.json").read_text())
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="pass --name"):
        package_name(copy)
    (copy / "meta.json").write_text(json.dumps({**meta, "name": "ave_green_tea"}))
    assert package_name(copy) == "ave_green_tea"


@pytest.mark.parametrize("name, version, message", [("ave-coffee", None, "--name"), ("ave_coffee", "one", "--version")])
def test_package_rejects_bad_name_or_version(trained_single, tmp_path, name, version, message):
    with pytest.raises(ValueError, match=message):
        package_model(trained_single, tmp_path, name=name, version=version)
    assert not any(tmp_path.iterdir())


def test_package_cli_missing_model(tmp_path):
    result = runner.invoke(app, ["package", str(tmp_path / "nope"), str(tmp_path / "out")])
    assert result.exit_code == 2 and result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def test_package_name_with_language_prefix_and_version(trained_single, tmp_path):
    wheel = package_model(trained_single, tmp_path, name="en_ave_dark_roast", version="2.0.1")
    assert wheel == tmp_path / "en_ave_dark_roast-2.0.1" / "dist" / "en_ave_dark_roast-2.0.1-py3-none-any.whl"
    assert wheel.is_file()


def test_every_registered_function_has_an_entry_point():
    """spacy.load / spacy train find the package's functions without importing it only through entry points."""
    import re

    import tomllib

    root = Path(__file__).resolve().parents[2]
    groups = tomllib.loads((root / "pyproject.toml").read_text())["project"]["entry-points"]
    registered, factories = {}, set()
    for path in (root / "spacy_mtlave").rglob("*.py"):
        text = path.read_text()
        for kind, name in re.findall(r'registry\.(\w+)\("(spacy_mtlave\.[^"]+)"\)', text):
            registered[name] = kind
        factories |= set(re.findall(r'@Language\.factory\(\s*"(\w+)"', text))
    assert len(registered) >= 10 and factories == set(groups["spacy_factories"])
    for name, kind in registered.items():
        assert name in groups.get(f"spacy_{kind}", {}), f"{name} ({kind}) has no entry point in pyproject.toml"
