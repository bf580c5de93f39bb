"""init-config writes the shipped starting configs, as `spacy init config` does."""
from pathlib import Path

from spacy.util import load_config
from typer.testing import CliRunner

from spacy_mtlave.cli import app
from spacy_mtlave.training.train import CONFIG_DIR


def test_init_config_writes_each_shipped_config(tmp_path):
    runner = CliRunner()
    for pipeline, backbone, name in (("single", "glove", "single.cfg"), ("pair", "glove", "pair.cfg"), ("group", "minilm", "pair_trf.cfg"), ("single", "minilm", "single_trf.cfg")):
        out = tmp_path / f"{pipeline}_{backbone}.cfg"
        result = runner.invoke(app, ["init-config", str(out), "--pipeline", pipeline, "--backbone", backbone])
        assert result.exit_code == 0, result.output
        assert out.read_text() == (CONFIG_DIR / name).read_text()
        load_config(out, interpolate=False)  # a valid config
    assert Path(CONFIG_DIR).is_relative_to(Path(__file__).resolve().parents[2] / "spacy_mtlave")  # package data


def test_init_config_bad_input_is_one_line(tmp_path):
    runner = CliRunner()
    for args, message in ((["--pipeline", "triple"], "--pipeline must be one of single, pair, group"),
                          (["--backbone", "bert"], "--backbone must be one of glove, minilm")):
        result = runner.invoke(app, ["init-config", str(tmp_path / "x.cfg"), *args])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["init-config", str(tmp_path / "missing" / "x.cfg")])
    assert result.exit_code == 2 and "folder not found" in result.output
    result = runner.invoke(app, ["init-config", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.output
