"""project.yml must load with spaCy's project loader (weasel): a name clash or a bad reference breaks every
`spacy project run`, the README's main command included."""
from pathlib import Path

from weasel.util import load_project_config

ROOT = Path(__file__).resolve().parent.parent


def test_project_yml_loads_and_workflows_name_commands():
    config = load_project_config(ROOT)
    commands = {c["name"] for c in config["commands"]}
    assert {"assets", "convert", "vectors", "train-pair", "train-single", "report"} <= commands
    for name, steps in config["workflows"].items():
        assert name not in commands, name
        assert set(steps) <= commands, (name, set(steps) - commands)
    assert config["workflows"]["all"][:3] == ["assets", "convert", "vectors"]
