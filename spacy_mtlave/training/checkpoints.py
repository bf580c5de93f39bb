"""Per-vertical checkpoints: each ``ave_tagger`` head of a joint pipeline keeps the epoch that is best on its own
vertical's dev score, as a single-task run does, instead of the one joint checkpoint spaCy keeps for the averaged
score.

The logger ``spacy_mtlave.vertical_checkpoints.v1`` wraps spaCy's console logger. At every evaluation it reads each
head's dev score (``ave_macro_f_<component>``, or ``ave_macro_f`` for a head not bound to a vertical) from the scores
spaCy just computed, and keeps in memory the bytes of the head and of the shared components (tok2vec or transformer)
at two checkpoints per head: the best raw dev score, and the best trailing mean of the last ``window`` dev scores
(a dev split of 14 titles moves by several points between neighbouring evaluations; the smoothed rule does not
follow one lucky evaluation). At the end it writes them to ``OUTPUT_DIR/checkpoints/<component>/{raw,smoothed}/``
with ``checkpoints/selection.json`` (the rule to export, every evaluation's scores, the step each rule chose), and the
coupling's pair usage to ``OUTPUT_DIR/coupling_usage.json``; :func:`restore_checkpoint` loads one into a pipeline.
"""
import shutil
import sys
from pathlib import Path
from typing import IO, Callable, Dict, List, Optional, Tuple

import srsly
from spacy import util
from spacy.language import Language
from spacy.training.loggers import console_logger

from ..pipeline.tagger import AVETagger

RULES = ("raw", "smoothed")


class VerticalCheckpoints:
    """Tracks each head's dev scores and keeps its best checkpoints (bytes of the head and the shared components)."""

    def __init__(self, nlp: Language, window: int = 3) -> None:
        if window < 1:
            raise ValueError(f"vertical_checkpoints: window must be >= 1, got {window}")
        self.nlp, self.window = nlp, window
        heads = [name for name, pipe in nlp.pipeline if isinstance(pipe, AVETagger)]
        self.keys = {name: f"ave_macro_f_{name}" if nlp.get_pipe(name).vertical is not None else "ave_macro_f" for name in heads}
        self.shared = [name for name, pipe in nlp.pipeline if not isinstance(pipe, AVETagger) and getattr(pipe, "listeners", None) is not None]
        self.history: Dict[str, List[Dict]] = {name: [] for name in heads}
        self.best: Dict[str, Dict[str, Tuple[float, Dict, Dict[str, bytes]]]] = {name: {} for name in heads}

    def observe(self, info: Dict) -> None:
        """One evaluation (spaCy's training ``info``): record every head's score, snapshot the heads that improved."""
        scores = info.get("other_scores") or {}
        for name, key in self.keys.items():
            raw = scores.get(key)
            if raw is None:
                continue
            history = self.history[name]
            recent = [h["raw"] for h in history[-(self.window - 1):]] if self.window > 1 else []
            entry = {"step": info.get("step"), "epoch": info.get("epoch"), "raw": float(raw), "smoothed": float(sum(recent + [raw]) / (len(recent) + 1))}
            history.append(entry)
            improved = [rule for rule in RULES if rule not in self.best[name] or entry[rule] > self.best[name][rule][0]]
            if improved:
                snapshot = {comp: self.nlp.get_pipe(comp).to_bytes(exclude=["vocab"]) for comp in self.shared + [name]}
                for rule in improved:
                    self.best[name][rule] = (entry[rule], entry, snapshot)

    def write(self, output_dir: Path, select: str) -> None:
        """``output_dir/checkpoints`` (written to a temporary folder, then moved into place)."""
        target = Path(output_dir) / "checkpoints"
        tmp = Path(output_dir) / "checkpoints.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        chosen: Dict[str, Dict] = {}
        for name, rules in self.best.items():
            chosen[name] = {}
            for rule, (_, entry, snapshot) in rules.items():
                folder = tmp / name / rule
                folder.mkdir(parents=True)
                for comp, data in snapshot.items():
                    (folder / f"{comp}.bin").write_bytes(data)
                chosen[name][rule] = entry
        srsly.write_json(tmp / "selection.json", {"select": select, "window": self.window, "chosen": chosen, "history": self.history})
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)


@util.registry.loggers("spacy_mtlave.vertical_checkpoints.v1")
def create_vertical_checkpoints(output_dir: Optional[str] = None, select: str = "smoothed", window: int = 3, progress_bar: bool = False) -> Callable:
    """spaCy's console logger plus per-head checkpoints (see the module docstring). ``output_dir``: the training
    output folder (``train``, ``train-pair`` and ``train-group`` fill it; null keeps nothing). ``select``: the rule
    the package's train commands export, "smoothed" (best trailing mean of ``window`` evaluations) or "raw"."""
    if select not in RULES:
        raise ValueError(f"vertical_checkpoints: select must be one of {', '.join(RULES)}, got {select!r}")
    console = console_logger(progress_bar=progress_bar)

    def setup(nlp: Language, stdout: IO = sys.stdout, stderr: IO = sys.stderr) -> Tuple[Callable, Callable]:
        log_console, finalize_console = console(nlp, stdout, stderr)
        tracker = VerticalCheckpoints(nlp, window)

        def log_step(info: Optional[Dict]) -> None:
            log_console(info)
            if info is not None:
                tracker.observe(info)

        def finalize() -> None:
            finalize_console()
            if output_dir is None:
                return
            tracker.write(Path(output_dir), select)
            if "coupling" in nlp.pipe_names and hasattr(nlp.get_pipe("coupling"), "usage"):
                usage = nlp.get_pipe("coupling").usage()
                srsly.write_json(Path(output_dir) / "coupling_usage.json", usage)
                for pair, stats in usage.items():
                    stdout.write(
                        f"coupling {pair}: {stats['updates']} updates, {stats['pairs_per_update']['mean']:.0f} pairs of L per update, "
                        f"each pair of L used {stats['uses_per_pair']['mean']:.1f} times ({100 * stats['uses_per_pair']['never_used']:.0f}% never)\n"
                    )

        return log_step, finalize

    return setup


def selected_checkpoint(output_dir: Path, head: str) -> Optional[Path]:
    """The checkpoint folder of ``head`` chosen by the run's selection rule, or None if the run kept none."""
    selection = Path(output_dir) / "checkpoints" / "selection.json"
    if not selection.is_file():
        return None
    folder = selection.parent / head / srsly.read_json(selection)["select"]
    return folder if folder.is_dir() else None


def restore_checkpoint(nlp: Language, checkpoint: Path) -> Language:
    """Load a checkpoint's component bytes (``<component>.bin``) into ``nlp``'s components of those names."""
    for path in sorted(Path(checkpoint).glob("*.bin")):
        nlp.get_pipe(path.stem).from_bytes(path.read_bytes(), exclude=["vocab"])
    return nlp
