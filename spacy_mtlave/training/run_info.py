"""The ``run.json`` contract: what every training command writes next to its pipelines (kind, coupling, seed, config,
command-line overrides, and per vertical the pipeline and corpus folders, relative to the run) and what ``report``
and the benchmarks read back."""
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import srsly

from ..outputs import write_json

SINGLE, BASELINE_NER, DEFAULT_MULTI = "single", "spaCy ner", "full coupling"
PAIR_SYSTEMS = {"none": "hard sharing", "cce": "cce", "lce": "lce", "full": "full coupling"}
SYSTEM_ORDER = (SINGLE, BASELINE_NER, "hard sharing", "cce", "lce", "full coupling", *(f"group {name}" for name in PAIR_SYSTEMS.values()))

@dataclass
class Run:
    """One training output: its pipelines and corpora (absolute paths) per vertical."""

    path: Path
    kind: str
    coupling: str
    seed: int
    config: str
    verticals: Dict[str, Tuple[Path, Path]]
    overrides: Dict[str, Any] = field(default_factory=dict)

    @property
    def system(self) -> str:
        """The system name, with the run's command-line config overrides (``full coupling (label_init_std=1.0)``)."""
        name = system_name(self.kind, self.coupling, self.config)
        if self.overrides:
            name += " (" + ", ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in sorted(self.overrides.items())) + ")"
        return name


def system_name(kind: str, coupling: str, config: str = "") -> str:
    """"single", "spaCy ner" (a single run of configs/baseline_ner.cfg), the pair's coupling mode name, or "group "
    and the mode name for a run of train-group; runs of another config than single.cfg / pair.cfg get its name
    in brackets ("full coupling [pair_trf]")."""
    # a config other than the shipped CPU defaults names the system too: "full coupling [pair_trf]"
    suffix = "" if Path(config).name in ("", "single.cfg", "pair.cfg", "baseline_ner.cfg") else f" [{Path(config).stem}]"
    if kind == "single":
        return BASELINE_NER if str(config).endswith("baseline_ner.cfg") else SINGLE + suffix
    if kind == "pair" and coupling in PAIR_SYSTEMS:
        return PAIR_SYSTEMS[coupling] + suffix
    if kind == "group" and coupling in PAIR_SYSTEMS:
        return f"group {PAIR_SYSTEMS[coupling]}{suffix}"
    raise ValueError(f"run.json: unknown kind/coupling {kind!r}/{coupling!r}")


def read_run(run_dir: Path) -> Run:
    """``RUN_DIR/run.json``; ValueError naming the directory or the file when it is missing, malformed or incomplete."""
    run_dir = Path(run_dir)
    path = run_dir / "run.json"
    if not path.is_file():
        raise ValueError(f"{run_dir}: no run.json (not a training output of 'train', 'train-pair' or 'train-group')")
    try:
        info = srsly.read_json(path)
    except (ValueError, OSError) as err:
        raise ValueError(f"{path}: malformed run.json ({' '.join(str(err).split())[:120]})") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: malformed run.json (expected an object, got {type(info).__name__})")
    missing = [key for key in ("kind", "coupling", "seed", "verticals") if key not in info]
    if missing or not info["verticals"]:
        raise ValueError(f"{path}: missing {', '.join(missing) or 'verticals'}")
    entries, seed, overrides = info["verticals"], info["seed"], info.get("overrides", {})
    if not isinstance(entries, dict) or not all(isinstance(e, dict) and isinstance(e.get("model"), str) and isinstance(e.get("corpus"), str) for e in entries.values()):
        raise ValueError(f"{path}: malformed run.json ('verticals' must map each vertical to its 'model' and 'corpus' folders)")
    if not isinstance(seed, int) or isinstance(seed, bool) or not isinstance(overrides, dict):
        raise ValueError(f"{path}: malformed run.json ('seed' must be an integer, 'overrides' an object)")
    verticals = {v: ((run_dir / e["model"]).resolve(), (run_dir / e["corpus"]).resolve()) for v, e in entries.items()}
    return Run(run_dir, str(info["kind"]), str(info["coupling"]), seed, str(info.get("config", "")), verticals, overrides)


def write_run_info(
    output_dir: Path, kind: str, coupling: str, seed: int, config: Path, verticals: Dict[str, Tuple[Path, Path]], overrides: Optional[Dict[str, Any]] = None
) -> None:
    """``OUTPUT_DIR/run.json``: what ``report`` needs to find a run's pipelines and corpora (paths relative to it), and
    the config overrides given on the command line."""
    out = Path(output_dir).resolve()
    write_json(out / "run.json", {
        "kind": kind,
        "coupling": coupling,
        "seed": seed,
        "config": str(config),
        "overrides": dict(overrides or {}),
        "verticals": {v: {"model": os.path.relpath(Path(m).resolve(), out), "corpus": os.path.relpath(Path(c).resolve(), out)} for v, (m, c) in verticals.items()},
    })


