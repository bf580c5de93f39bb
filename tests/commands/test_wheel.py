"""The package installed from its wheel, outside the repository, trains with its shipped configs (no --config)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import TINY

ROOT = Path(__file__).resolve().parents[2]


def run(args, **kwargs) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=dict(env, OMP_NUM_THREADS="1"), timeout=600, **kwargs)


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_trains_outside_the_repo(data_dir, tmp_path):
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", tmp_path / "dist", ROOT])
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("spacy_mtlave-*.whl"))
    venv = tmp_path / "venv"
    assert run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv]).returncode == 0
    python = venv / "bin" / "python"
    installed = run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", wheel])
    assert installed.returncode == 0, installed.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = run([python, "-c", "import spacy_mtlave.training.train as t; print(t.CONFIG_DIR)"], cwd=work)
    assert where.returncode == 0 and Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr
    tiny = [arg for key, value in TINY.items() for arg in (f"--{key}", json.dumps(value))]
    common = ["--vectors", data_dir / "vectors", "--max-steps", "3"]
    for args in (["train", data_dir / "coffee", "single"], ["train-pair", data_dir / "coffee", data_dir / "tea", "pair"],
                 ["train-group", data_dir / "coffee", data_dir / "tea", "group"]):
        result = run([python, "-m", "spacy_mtlave", *args, *common, *tiny], cwd=work)
        assert result.returncode == 0, result.stderr[-2000:]
        assert (work / args[-1] / "run.json").is_file()
