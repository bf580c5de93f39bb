"""Simulated annotation on OA-Mine (issue 19): does choosing the titles to label by the CRF's uncertainty need fewer
labels than choosing them at random?

Per vertical and seed: start from a random 20% of the vertical's training titles (drawn with the seed), train
single-task (``configs/single.cfg``, the ``train`` command's recipe: 40 epochs of batches of 30, checkpoint chosen on
dev by the smoothed rule), then per round let each strategy (``select``'s least-confidence, entropy, random; exact and
near duplicates skipped, then topped up from them if the pool runs short) choose another 10% of the training titles
from the rest of the training split, reveal their gold labels (the oracle), retrain from scratch on everything
labelled so far and score on the test split; up to ``--stop`` (60%). The 100% reference trains on all the training
titles with the same recipe and seeds. The coupled variant does the same with the vertical trained jointly with its
benchmark partner (``train-pair``'s recipe: ``configs/pair.cfg``, coupling weight 100, partner at 100% of its
titles), selection by the vertical's own head.

Everything runs in one process (no model written to disk): vectors are loaded once, every training run builds the
pipeline from the config in memory. Results are appended to ``--raw`` (JSONL, one line per trained model) as they
come, so a partial run keeps what finished. Run again with the same arguments (or more ``--shares``), it resumes: the
rounds already recorded are read back (their titles), and only the last of them is retrained, when an uncertainty
strategy needs a model to choose the next round from (training is deterministic for a given seed and data; the log
says whether the retrained score equals the recorded one). ``--table-only`` tabulates them; ``--previous-json`` with
``--previous-variants`` reads an arm from a previous tabulation's JSON instead of from raw rows (when the raw files
are gone), and the document says which rows were measured when.

    OMP_NUM_THREADS=1 python benchmarks/active_learning.py --seeds 0 1 2 --raw training/active_learning/raw.jsonl \\
        --output docs/results/active_learning
    # the coupled arm only, then both arms, the single-task one read from the previous tabulation
    OMP_NUM_THREADS=1 python benchmarks/active_learning.py --verticals --coupled-verticals Coffee ... --coupled-seeds 0 1 2 \\
        --strategies least-confidence random --shares 0.2 0.3 0.4 --reference-variants coupled --raw training/active_learning/raw_coupled.jsonl
    python benchmarks/active_learning.py --table-only --raw training/active_learning/raw_coupled.jsonl \\
        --previous-json docs/results/active_learning.json --previous-variants single --output docs/results/active_learning

Rounds are scored on the test split because that is the protocol of an annotation simulation (the learning curve is
the result); no setting of the strategies or of training was chosen on it.
"""
import argparse
import io
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean, pstdev
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the package next to this script (a frozen copy too)

PAIRS = [("Coffee", "Tea"), ("Laundry Detergent", "Sunscreen"), ("Conditioner", "Vitamin"), ("Shoes", "Toothbrush"), ("Breakfast Cereal", "Safety Mask")]
STRATEGIES = ("least-confidence", "entropy", "random")
TRACKERS: List = []


def slug(name: str) -> str:
    from spacy_mtlave.vertical import slugify

    return slugify(name)


def _register_logger() -> None:
    from spacy import util

    from spacy_mtlave.training.checkpoints import VerticalCheckpoints

    @util.registry.loggers("active_learning.checkpoints.v1")
    def make_logger(window: int = 3):
        def setup(nlp, stdout=sys.stdout, stderr=sys.stderr):
            tracker = VerticalCheckpoints(nlp, window)
            TRACKERS.append(tracker)

            def log_step(info):
                if info is not None:
                    tracker.observe(info)

            return log_step, lambda: None

        return setup


class Trainer:
    """Trains single or pair pipelines in memory, vectors loaded once."""

    def __init__(self, vectors: Path, workdir: Path) -> None:
        import spacy

        from spacy_mtlave.training.train import CONFIG_DIR

        self.vectors = Path(vectors)
        self.workdir = workdir
        self.config_dir = CONFIG_DIR
        self._vectors_nlp = spacy.load(self.vectors)
        self._patch_vectors()
        _register_logger()

    def _patch_vectors(self) -> None:
        """``init_nlp`` reloads the vectors table from disk for every run (~100 MB); give it the loaded one."""
        import spacy.training.initialize as initialize

        source = self._vectors_nlp

        from spacy.attrs import ORTH  # noqa: F401
        from spacy.util import OOV_RANK

        def load_vectors_into_model(nlp, name, *, add_strings=True):
            nlp.vocab.vectors = source.vocab.vectors  # the strings of 1.1M keys are not needed: nothing is saved
            for lex in nlp.vocab:
                lex.rank = nlp.vocab.vectors.key2row.get(lex.orth, OOV_RANK)

        initialize.load_vectors_into_model = load_vectors_into_model

    def _docbin(self, docs, name: str) -> Path:
        from spacy.tokens import DocBin

        path = self.workdir / name
        DocBin(docs=docs, store_user_data=True).to_disk(path)
        return path

    def train(self, kind: str, train_docs, dev_path: Path, seed: int, vertical: str, partner: Optional[Tuple[str, Path, Path]] = None):
        """(nlp restored to the head's selected checkpoint, head name)."""
        from spacy.training.initialize import init_nlp
        from spacy.training.loop import train as train_loop
        from spacy.util import load_config

        train_path = self._docbin(train_docs, f"train_{kind}.spacy")
        settings = {"paths.vectors": str(self.vectors), "system.seed": seed,
                    "training.logger": {"@loggers": "active_learning.checkpoints.v1", "window": 3}}
        if kind == "single":
            cfg = self.config_dir / "single.cfg"
            settings.update({"paths.train": str(train_path), "paths.dev": str(dev_path)})
            head = "ave_tagger"
        else:
            cfg = self.config_dir / "pair.cfg"
            name2, train2, dev2 = partner
            settings.update({"paths.train1": str(train_path), "paths.dev1": str(dev_path), "paths.train2": str(train2), "paths.dev2": str(dev2),
                             "components.tagger_v1.vertical": vertical, "components.tagger_v2.vertical": name2,
                             "components.coupling.mode": "full",
                             "corpora.train.verticals": {"v1": vertical, "v2": name2}, "corpora.dev.verticals": {"v1": vertical, "v2": name2}})
            head = "tagger_v1"
        config = load_config(cfg, overrides=settings, interpolate=False)
        TRACKERS.clear()
        nlp = init_nlp(config)
        sink = io.StringIO()
        train_loop(nlp, None, stdout=sink, stderr=sink)
        tracker = TRACKERS[-1]
        best = tracker.best.get(head, {}).get("smoothed")
        if best is not None:
            for comp, data in best[2].items():
                nlp.get_pipe(comp).from_bytes(data, exclude=["vocab"])
        return nlp, head


def predict_docs(nlp, head: str, texts: Sequence[str], vertical: str):
    from spacy_mtlave.vertical import set_vertical

    docs = []
    for text in texts:
        doc = nlp.make_doc(text)
        set_vertical(doc, vertical)
        docs.append(doc)
    keep = [name for name, pipe in nlp.pipeline if name == head or getattr(pipe, "listeners", None) is not None]
    with nlp.select_pipes(enable=keep):
        return list(nlp.pipe(docs, batch_size=256))


def test_scores(nlp, head: str, gold, train_docs, vertical: str) -> Dict[str, float]:
    from spacy.training import Example

    from spacy_mtlave.evaluation.metrics import score_examples, train_tag_counts

    predicted = predict_docs(nlp, head, [d.text for d in gold], vertical)
    scores = score_examples([Example(p, g) for p, g in zip(predicted, gold)], train_counts=train_tag_counts(train_docs))
    return {k: scores.get(k) for k in ("macro_f1", "ents_f", "rare_tag_f1")}


def pool_scores(nlp, head: str, texts: Sequence[str], vertical: str, strategy: str) -> Optional[List[float]]:
    if strategy == "random":
        return None
    from spacy_mtlave.active.uncertainty import tagger_uncertainty

    docs = predict_docs(nlp, head, texts, vertical)
    return [u.score(strategy) for u in tagger_uncertainty(nlp.get_pipe(head), docs)]


def read(path: Path, vocab):
    from spacy_mtlave.training.corpus import read_docbin

    return read_docbin(path, vocab)


def done_keys(*raws: Path) -> Dict[tuple, dict]:
    out = {}
    for raw in raws:
        if raw.is_file():
            for line in raw.read_text(encoding="utf8").splitlines():
                if line.strip():
                    r = json.loads(line)
                    out[(r["variant"], r["vertical"], r["seed"], r["strategy"], r["share"])] = r
    return out


def single_reference_runs(root: Path, verticals: Sequence[str], seeds: Sequence[int]) -> List[dict]:
    """Single-task 100% rows from the low-resource experiment's ``train`` runs (same config, seeds and data; the
    in-process trainer here reproduces their test macro-F1 to the digit wherever both exist)."""
    rows = []
    for vertical in verticals:
        partner = dict(PAIRS)[vertical]
        for seed in seeds:
            cache = root / f"{slug(vertical)}+{slug(partner)}" / "f1" / f"seed{seed}" / f"single_{slug(vertical)}" / "test_scores.json"
            if cache.is_file():
                scores = json.loads(cache.read_text(encoding="utf8")).get(vertical)
                if scores:
                    rows.append({"variant": "single", "vertical": vertical, "seed": seed, "strategy": "all", "share": 1.0, **scores, "source": str(cache)})
    return rows


def reference_runs(root: Path, verticals: Sequence[str], seeds: Sequence[int]) -> List[dict]:
    """Coupled 100% reference rows from the low-resource experiment's finished runs (``train-pair``, pair.cfg's
    coupling, partner at 100%; ``benchmarks/low_resource.py``), read from their cached ``test_scores.json``."""
    rows = []
    for vertical in verticals:
        partner = dict(PAIRS)[vertical]
        for seed in seeds:
            cache = root / f"{slug(vertical)}+{slug(partner)}" / "f1" / f"seed{seed}" / "coupling" / "test_scores.json"
            if cache.is_file():
                scores = json.loads(cache.read_text(encoding="utf8")).get(vertical)
                if scores:
                    rows.append({"variant": "coupled", "vertical": vertical, "seed": seed, "strategy": "all", "share": 1.0, **scores, "source": str(cache)})
    return rows


def run_grid(a) -> None:
    import torch
    from spacy.tokens import DocBin

    from spacy_mtlave.active.select import rank_and_choose

    torch.set_num_threads(1)
    a.raw.parent.mkdir(parents=True, exist_ok=True)
    done = done_keys(a.raw)
    work = Path(tempfile.mkdtemp(prefix="al_", dir=a.raw.parent))
    trainer = Trainer(a.vectors, work)
    vocab = trainer._vectors_nlp.vocab
    log = lambda msg: print(time.strftime("%H:%M:%S"), msg, flush=True)  # noqa: E731
    shares = sorted(a.shares) if a.shares else [round(a.start + k * a.step, 4) for k in range(int(round((a.stop - a.start) / a.step)) + 1)]

    def record(row: dict) -> None:
        with a.raw.open("a", encoding="utf8") as handle:
            handle.write(json.dumps(row) + "\n")
        done[(row["variant"], row["vertical"], row["seed"], row["strategy"], row["share"])] = row

    import atexit
    import shutil

    atexit.register(shutil.rmtree, work, True)  # the rounds' small training DocBins
    jobs = [("single", v, seed) for seed in a.seeds for v in a.verticals]
    jobs += [("coupled", v, seed) for seed in a.coupled_seeds for v in a.coupled_verticals]
    for variant, vertical, seed in jobs:
        folder = a.corpus / slug(vertical)
        train_all = read(folder / "train.spacy", vocab)
        gold_bytes = (folder / "test.spacy").read_bytes()
        partner = None
        if variant == "coupled":
            name2 = dict(PAIRS)[vertical]
            partner = (name2, a.corpus / slug(name2) / "train.spacy", a.corpus / slug(name2) / "dev.spacy")
        kind = "single" if variant == "single" else "pair"
        total = len(train_all)

        def train_and_score(indices: List[int]):
            t = time.time()
            nlp, head = trainer.train(kind, [train_all[i] for i in indices], folder / "dev.spacy", seed, vertical, partner)
            gold = list(DocBin().from_bytes(gold_bytes).get_docs(nlp.vocab))
            scores = test_scores(nlp, head, gold, [train_all[i] for i in indices], vertical)
            return nlp, head, dict(scores, seconds=round(time.time() - t, 1))

        if a.reference and variant in a.reference_variants and (variant, vertical, seed, "all", 1.0) not in done:
            _, _, scores = train_and_score(list(range(total)))
            record({"variant": variant, "vertical": vertical, "seed": seed, "strategy": "all", "share": 1.0, "n": total, **scores})
            log(f"{variant} {vertical} seed {seed} 100% (n={total}): macro-F1 {scores['macro_f1']:.3f} ({scores['seconds']:.0f}s)")
        keys = [(variant, vertical, seed, "start", shares[0])] + [(variant, vertical, seed, s, sh) for s in a.strategies for sh in shares[1:]]
        if all(k in done for k in keys):
            continue
        start_row = done.get(keys[0])
        base: Optional[tuple] = None  # (nlp, head) trained on the start, built when a strategy needs it
        if start_row is not None and "labelled" in start_row:
            start = list(start_row["labelled"])
        else:
            rng = random.Random(seed)
            order = list(range(total))
            rng.shuffle(order)
            start = sorted(order[: int(round(a.start * total))])
            nlp, head, scores = train_and_score(start)
            base = (nlp, head)
            start_row = {"variant": variant, "vertical": vertical, "seed": seed, "strategy": "start", "share": shares[0], "n": len(start), **scores, "labelled": start}
            record(start_row)
            log(f"{variant} {vertical} seed {seed} start {shares[0]:.0%} (n={len(start)}): macro-F1 {scores['macro_f1']:.3f} ({scores['seconds']:.0f}s)")
        for strategy in a.strategies:
            labelled, model, previous, resumed = list(start), base, start_row, base is None  # a fresh start: later records are another chain's
            for share in shares[1:]:
                row = done.get((variant, vertical, seed, strategy, share))
                if resumed and row is not None and "labelled" in row:
                    # a round recorded by an earlier run of the same grid: take its titles, train only if a later round needs the model
                    labelled, model, previous = list(row["labelled"]), None, row
                    continue
                resumed = False
                if model is None and strategy != "random":  # resuming: retrain the last recorded round to choose from (deterministic)
                    nlp, head, scores = train_and_score(labelled)
                    model = (nlp, head)
                    same = abs(scores["macro_f1"] - previous["macro_f1"]) < 1e-9
                    log(f"{variant} {vertical} seed {seed} {strategy}: resumed after {previous['share']:.0%}, retrained on its {len(labelled)} titles: "
                        f"macro-F1 {scores['macro_f1']:.3f} ({'same as' if same else 'DIFFERS from'} the recorded {previous['macro_f1']:.3f}; {scores['seconds']:.0f}s)")
                nlp, head = model if model is not None else (None, None)  # random chooses without a model
                size = int(round(share * total)) - len(labelled)
                taken = set(labelled)
                pool = [i for i in range(total) if i not in taken]
                texts = [train_all[i].text for i in pool]
                chosen, skipped = rank_and_choose(texts, size, strategy, pool_scores(nlp, head, texts, vertical, strategy),
                                                  seed=seed * 1000 + int(round(share * 100)), near_duplicate=a.near_duplicate,
                                                  known=[train_all[i].text for i in labelled], fill=True)
                labelled = sorted(labelled + [pool[i] for i in chosen])
                nlp, head, scores = train_and_score(labelled)
                model = (nlp, head)
                previous = {"variant": variant, "vertical": vertical, "seed": seed, "strategy": strategy, "share": share, "n": len(labelled),
                            **scores, "duplicates_skipped": dict(skipped), "labelled": labelled}
                record(previous)
                log(f"{variant} {vertical} seed {seed} {strategy} {share:.0%} (n={len(labelled)}): macro-F1 {scores['macro_f1']:.3f} ({scores['seconds']:.0f}s)")


# ---------------------------------------------------------------------------------------------------------------------
# tables and figure
#
# Each arm (``variant``: single-task or coupled) is tabulated from one summary, an "arm": the curves (per strategy,
# share and seed, the mean macro-F1 over the verticals), the 100% reference, the per-vertical means and sds. An arm is
# built from the raw rows this script wrote (``arm_from_rows``) or, when those files are gone, from a previous
# tabulation's JSON (``arm_from_previous``, ``--previous-json``): the JSON keeps the curves per seed, so every table
# and figure of that arm is recomputed from it as it was measured.

def curves(rows: List[dict], variant: str) -> Dict[str, Dict[float, Dict[int, float]]]:
    """curves[strategy][share][seed] = mean macro-F1 (x100) over the verticals run for that seed (only seeds whose every
    vertical has the point). The 20% start is shared by every strategy."""
    by: Dict[Tuple[str, float, int], Dict[str, float]] = {}
    for r in rows:
        if r["variant"] != variant or r.get("macro_f1") is None:
            continue
        strategies = STRATEGIES if r["strategy"] == "start" else (r["strategy"],)
        for s in strategies:
            by.setdefault((s, r["share"], r["seed"]), {})[r["vertical"]] = 100 * r["macro_f1"]
    verticals = sorted({r["vertical"] for r in rows if r["variant"] == variant})
    out: Dict[str, Dict[float, Dict[int, float]]] = {}
    for (s, share, seed), values in by.items():
        if set(values) == set(verticals):
            out.setdefault(s, {}).setdefault(share, {})[seed] = mean(values.values())
    return out


def per_vertical(rows: List[dict], variant: str) -> Dict[str, Dict[str, Dict[float, List[float]]]]:
    out: Dict = {}
    for r in rows:
        if r["variant"] != variant or r.get("macro_f1") is None or r["strategy"] == "all":
            continue
        strategies = STRATEGIES if r["strategy"] == "start" else (r["strategy"],)
        for s in strategies:
            out.setdefault(r["vertical"], {}).setdefault(s, {}).setdefault(r["share"], []).append(100 * r["macro_f1"])
    return out


def _stat(values: Sequence[float]) -> Optional[List]:
    """[mean, sd, number of seeds] (population sd), None without values."""
    return [mean(values), pstdev(values), len(values)] if values else None


def _fmt(stat: Optional[Sequence]) -> str:
    """``m +- sd``, ``m (1 seed)`` or ``-``; a stat read back from a markdown table has no count (None: several seeds)."""
    if not stat:
        return "-"
    m, sd, n = stat
    return f"{m:.1f} (1 seed)" if n == 1 else f"{m:.1f} +- {sd:.1f}"


def _ms(values: Sequence[float]) -> str:
    return _fmt(_stat(values))


def share_needed(curve: Dict[float, Dict[int, float]], target: float) -> Optional[float]:
    """The smallest share whose mean over seeds is at least ``target``."""
    for share in sorted(curve):
        if curve[share] and mean(curve[share].values()) >= target:
            return share
    return None


def _raw_files_with(variant: str, raws: Sequence[Path]) -> List[Path]:
    out = []
    for raw in raws:
        if raw.is_file() and any(line.strip() and json.loads(line)["variant"] == variant for line in raw.read_text(encoding="utf8").splitlines()):
            out.append(raw)
    return out


def arm_from_rows(rows: List[dict], variant: str, strategies: Sequence[str], provenance: str = "") -> Optional[dict]:
    pv = per_vertical(rows, variant)
    if not pv:
        return None
    c = curves(rows, variant)
    ran = [s for s in strategies if any(r["variant"] == variant and r["strategy"] == s for r in rows)]
    ref = c.get("all", {}).get(1.0, {})
    ref_v: Dict[str, List[float]] = {}
    for r in rows:
        if r["variant"] == variant and r["strategy"] == "all" and r.get("macro_f1") is not None:
            ref_v.setdefault(r["vertical"], []).append(100 * r["macro_f1"])
    trained = [r for r in rows if r["variant"] == variant and "seconds" in r]
    return {"variant": variant, "strategies": ran, "curves": {s: c.get(s, {}) for s in ran},
            "reference": {"mean": mean(ref.values()), "sd": pstdev(ref.values()), "seeds": sorted(ref), "values": ref} if ref else None,
            "per_vertical": {v: {s: {share: _stat(vals) for share, vals in pv[v][s].items()} for s in ran if s in pv[v]} for v in pv},
            "per_vertical_reference": {v: _stat(vals) for v, vals in ref_v.items()},
            "verticals": sorted({r["vertical"] for r in rows if r["variant"] == variant}),
            "models": len(trained), "minutes": round(sum(r["seconds"] for r in trained) / 60), "provenance": provenance, "selection": []}


_CELL = re.compile(r"^(-?\d+(?:\.\d+)?)(?: \+- (\d+(?:\.\d+)?)| \(1 seed\))?")


def _parse_cell(cell: str) -> Optional[List]:
    m = _CELL.match(cell.strip())
    if not m:
        return None
    if m.group(2) is not None:
        return [float(m.group(1)), float(m.group(2)), None]
    return [float(m.group(1)), 0.0, 1]


def parse_previous_markdown(path: Path, variant: str) -> dict:
    """From a previous ``active_learning.md``: the arm's per-vertical table, the selection table (single-task) and the
    count of models trained. Only used when the previous JSON lacks them (tabulations before ``--previous-json``)."""
    out = {"per_vertical": {}, "per_vertical_reference": {}, "selection": [], "models": None, "minutes": None}
    if not path.is_file():
        return out
    text = path.read_text(encoding="utf8")
    heading = "Single-task" if variant == "single" else "Coupled with"
    section = next((s for s in re.split(r"(?m)^## ", text) if s.startswith(heading)), "")
    lines = section.splitlines()
    header = next((i for i, line in enumerate(lines) if line.startswith("| vertical | strategy |")), None)
    if header is not None:
        cols = [c.strip() for c in lines[header].strip("|").split("|")][2:]
        shares = [round(float(c.rstrip("%")) / 100, 4) for c in cols]
        for line in lines[header + 2:]:
            if not line.startswith("|"):
                break
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            vertical, strategy, values = cells[0], cells[1], cells[2:]
            for share, cell in zip(shares, values):
                stat = _parse_cell(cell)
                if stat is None:
                    continue
                if share == 1.0:
                    out["per_vertical_reference"][vertical] = stat
                else:
                    out["per_vertical"].setdefault(vertical, {}).setdefault(strategy, {})[share] = stat
    if variant == "single":
        text_lines = text.splitlines()
        start = next((i for i, line in enumerate(text_lines) if line.startswith("What the strategies chose (single-task")), None)
        if start is not None:
            block = [text_lines[start], ""]
            for line in text_lines[start + 2:]:
                if not line.startswith("|"):
                    break
                block.append(line)
            out["selection"] = block
    m = re.search(r"(\d+) models trained, (\d+) min of training", text)
    if m:
        out["models"], out["minutes"] = int(m.group(1)), int(m.group(2))
    return out


def _git_note(path: Path) -> str:
    """`` as committed in <hash> (<date>)`` when the file is unchanged since its last commit, else ``""``."""
    import subprocess

    try:
        cwd = path.resolve().parent
        if subprocess.run(["git", "diff", "--quiet", "HEAD", "--", path.name], cwd=cwd, capture_output=True).returncode != 0:
            return ""
        log = subprocess.run(["git", "log", "-1", "--format=%h %cs", "--", path.name], cwd=cwd, capture_output=True, text=True).stdout.split()
        return f" as committed in {log[0]} ({log[1]})" if len(log) == 2 else ""
    except (OSError, IndexError):
        return ""


def arm_from_previous(path: Path, variant: str, strategies: Sequence[str]) -> dict:
    """The arm as a previous tabulation (``--output``'s JSON) recorded it."""
    data = json.loads(path.read_text(encoding="utf8"))
    if variant not in data.get("variants", {}):
        raise SystemExit(f"error: {path}: no '{variant}' results")
    v = data["variants"][variant]
    arm_curves = {s: {float(share): {int(seed): value for seed, value in points.items()} for share, points in curve.items() if points}
                  for s, curve in v["curves"].items()}
    ran = [s for s in strategies if s in arm_curves]
    ref = v.get("reference")
    if ref:
        ref = dict(ref, values={int(seed): value for seed, value in (ref.get("values") or {}).items()})
    md = parse_previous_markdown(path.with_suffix(".md"), variant) if "per_vertical" not in v else {}
    if "per_vertical" in v:
        per_v = {vert: {s: {float(share): stat for share, stat in points.items()} for s, points in by_s.items()} for vert, by_s in v["per_vertical"].items()}
        per_v_ref = v.get("per_vertical_reference", {})
    else:
        per_v, per_v_ref = md["per_vertical"], md["per_vertical_reference"]
    provenance = v.get("provenance") or (
        f"measured earlier by `{data.get('command', '?')}`, whose raw JSONL files were not kept; curves and 100% reference read from "
        f"`{path}`{_git_note(path)}" + (f", the per-vertical table from `{path.with_suffix('.md')}`" if per_v else ""))
    models = v.get("models", md.get("models"))
    minutes = v.get("minutes", md.get("minutes"))
    if v.get("provenance") and f"`{path}`" not in provenance:  # the measurement as first recorded; the reading back is said, not stored
        shown = f"{provenance}; read back from `{path}` (`--previous-json`)"
    else:
        shown = provenance
    return {"variant": variant, "strategies": ran, "curves": {s: arm_curves[s] for s in ran}, "reference": ref, "shown_provenance": shown,
            "per_vertical": per_v, "per_vertical_reference": per_v_ref, "verticals": v.get("verticals", sorted(per_v)),
            "models": models, "minutes": minutes, "models_note": v.get("models_note", "the whole previous tabulation, both arms" if "models" not in v else ""),
            "provenance": provenance, "selection": v.get("selection", md.get("selection", [])), "previous": True}


def summary_tables(arm: dict, strategies: Optional[Sequence[str]] = None) -> Tuple[str, Dict]:
    strategies = arm["strategies"] if strategies is None else strategies
    c, ref = arm["curves"], arm["reference"]
    shares = sorted({s for curve in c.values() for s in curve})
    data: Dict = {"variant": arm["variant"], "shares": shares, "curves": {}, "reference": None, "needed": {}, "seeds": []}
    if not shares:
        return "", data
    data["seeds"] = sorted({seed for curve in c.values() for point in curve.values() for seed in point})
    lines = ["| strategy | " + " | ".join(f"{100 * s:g}%" for s in shares) + " | share needed to reach 100% - 1 sd |",
             "|---|" + "---|" * (len(shares) + 1)]
    target = None
    if ref:
        target = ref["mean"] - ref["sd"]
        data["reference"] = {"mean": ref["mean"], "sd": ref["sd"], "seeds": ref["seeds"]}
        if ref.get("values"):
            data["reference"]["values"] = {str(seed): value for seed, value in ref["values"].items()}
    for s in strategies:
        curve = c.get(s, {})
        cells = [_ms(list(curve.get(share, {}).values())) for share in shares]
        needed = share_needed(curve, target) if target is not None else None
        data["curves"][s] = {f"{share:g}": {str(seed): value for seed, value in curve.get(share, {}).items()} for share in shares}
        data["needed"][s] = needed
        if target is None:
            need = "no reference"
        elif needed is None:
            need = f"not reached by {100 * shares[-1]:g}%"
        else:
            need = f"{100 * needed:g}%"
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {need} |")
    if ref:
        lines.append(f"| all titles (100%, reference) | {_fmt([ref['mean'], ref['sd'], len(ref['seeds'])])} (seeds {ref['seeds']}) |" + " |" * len(shares))
    md = "\n".join(lines)
    # uncertainty vs random at each share, in units of the larger of the two sds
    gains = []
    for s in strategies:
        if s == "random":
            continue
        row = [s]
        for share in shares:
            u, r = list(c.get(s, {}).get(share, {}).values()), list(c.get("random", {}).get(share, {}).values())
            row.append(_difference(u, r))
        gains.append("| " + " | ".join(row) + " |")
    if gains:
        md += "\n\nGain over random (mean macro-F1 difference; in units of the larger of the two sds over seeds):\n\n"
        md += "| strategy | " + " | ".join(f"{100 * s:g}%" for s in shares) + " |\n|---|" + "---|" * len(shares) + "\n" + "\n".join(gains)
    return md, data


def _difference(a: Sequence[float], b: Sequence[float]) -> str:
    """mean(a) - mean(b), and in units of the larger of the two (population) sds."""
    if not a or not b:
        return "-"
    sd = max(pstdev(a), pstdev(b))
    if min(len(a), len(b)) > 1 and sd > 0:
        return f"{mean(a) - mean(b):+.1f} ({(mean(a) - mean(b)) / sd:+.1f} sd)"
    return f"{mean(a) - mean(b):+.1f} (1 seed)" if min(len(a), len(b)) == 1 else f"{mean(a) - mean(b):+.1f}"


def vertical_table(arm: dict, strategies: Optional[Sequence[str]] = None) -> str:
    strategies = arm["strategies"] if strategies is None else strategies
    pv, ref = arm["per_vertical"], arm["per_vertical_reference"]
    shares = sorted({s for v in pv.values() for st in v.values() for s in st})
    lines = ["| vertical | strategy | " + " | ".join(f"{100 * s:g}%" for s in shares) + " | 100% |", "|---|---|" + "---|" * (len(shares) + 1)]
    for vertical in sorted(pv):
        for s in strategies:
            if s not in pv[vertical]:
                continue
            cells = [_fmt(pv[vertical][s].get(share)) for share in shares]
            lines.append(f"| {vertical} | {s} | " + " | ".join(cells) + f" | {_fmt(ref.get(vertical))} |")
    return "\n".join(lines)


def comparison(single: dict, coupled: dict, strategies: Sequence[str]) -> Tuple[str, Dict]:
    """Coupled minus single-task at equal label share (same verticals, seeds and 20% starts); per vertical (difference
    of the means over each arm's seeds) for the verticals both arms have, even when the arms' vertical sets differ."""
    both = [s for s in strategies if s in coupled["curves"] and s in single["curves"]]
    pv_s, pv_c = single.get("per_vertical") or {}, coupled.get("per_vertical") or {}
    common = sorted(set(pv_s) & set(pv_c))
    v_shares = sorted({sh for v in common for s in both for sh in pv_c[v].get(s, {}) if sh in pv_s[v].get(s, {})})
    vlines = []
    for vertical in common:
        for s in both:
            cs, ss = pv_c[vertical].get(s, {}), pv_s[vertical].get(s, {})
            cells = [f"{cs[sh][0] - ss[sh][0]:+.1f}" if cs.get(sh) and ss.get(sh) else "-" for sh in v_shares]
            vlines.append(f"| {vertical} | {s} | " + " | ".join(cells) + " |")
    per_vertical_md = ""
    if vlines:
        per_vertical_md = ("Per vertical, coupled minus single-task (difference of the means over each arm's seeds):\n\n| vertical | strategy | "
                           + " | ".join(f"{100 * sh:g}%" for sh in v_shares) + " |\n|---|---|" + "---|" * len(v_shares) + "\n" + "\n".join(vlines))
    if sorted(single["verticals"]) != sorted(coupled["verticals"]):
        md = (f"Not comparable as means over verticals: the coupled arm has {', '.join(coupled['verticals'])}, the single-task arm "
              f"{', '.join(single['verticals'])}.")
        return md + ("\n\n" + per_vertical_md if per_vertical_md else ""), {}
    shares = sorted({sh for s in strategies for sh in coupled["curves"].get(s, {}) if sh in single["curves"].get(s, {})})
    if not shares or not both:
        return "", {}
    data: Dict = {"shares": shares, "difference": {}}
    lines = ["| strategy | " + " | ".join(f"{100 * s:g}%" for s in shares) + " |", "|---|" + "---|" * len(shares)]
    for s in both:
        cells = []
        for share in shares:
            cp, sp = coupled["curves"][s].get(share, {}), single["curves"][s].get(share, {})
            cell = _difference(list(cp.values()), list(sp.values()))
            paired = sorted(set(cp) & set(sp))
            if cell != "-" and paired:
                cell += f", ahead on {sum(cp[k] > sp[k] for k in paired)}/{len(paired)} seeds"
            cells.append(cell)
            if cp and sp:
                data["difference"].setdefault(s, {})[f"{share:g}"] = mean(cp.values()) - mean(sp.values())
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    md = "\n".join(lines)
    if per_vertical_md:
        md += "\n\n" + per_vertical_md
    rs, rc = single.get("reference"), coupled.get("reference")
    if rs and rc:
        md += (f"\n\nAll titles (100%): coupled {rc['mean']:.1f} +- {rc['sd']:.1f} (seeds {rc['seeds']}) against single-task "
               f"{rs['mean']:.1f} +- {rs['sd']:.1f} (seeds {rs['seeds']}).")
        target = rs["mean"] - rs["sd"]
        reach = {s: share_needed(coupled["curves"][s], target) for s in coupled["strategies"]}
        data["coupled_needed_for_single_reference"] = reach
        md += f" Share the coupled arm needs to reach the single-task 100% - 1 sd ({target:.1f}): " + ", ".join(
            f"{s} {'not reached' if n is None else f'{100 * n:g}%'}" for s, n in reach.items()) + "."
    return md, data


def figure(arms: Dict[str, dict], strategies: Sequence[str], path: Path, command: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [v for v in ("single", "coupled") if v in arms and any(len(curve) > 1 for curve in arms[v]["curves"].values())]
    if not present:
        return
    fig, axes = plt.subplots(1, len(present), figsize=(6 * len(present), 4.6), squeeze=False, sharex=True, sharey=True)
    colours = {"least-confidence": "C0", "entropy": "C1", "random": "C2"}
    for ax, variant in zip(axes[0], present):
        arm = arms[variant]
        for k, s in enumerate(strategies):
            curve = arm["curves"].get(s, {})
            xs = sorted(curve)
            if len(xs) < 2:  # a strategy not run in this arm
                continue
            ax.errorbar([100 * x + (k - 1) * 0.6 for x in xs], [mean(curve[x].values()) for x in xs], yerr=[pstdev(curve[x].values()) for x in xs],
                        marker="o", capsize=3, label=s, color=colours.get(s))
        ref = arm["reference"]
        if ref:
            ax.axhline(ref["mean"], color="black", lw=1, label=f"100% of titles ({ref['mean']:.1f} +- {ref['sd']:.1f})")
            ax.axhspan(ref["mean"] - ref["sd"], ref["mean"] + ref["sd"], color="black", alpha=0.1)
        if variant == "coupled" and "single" in arms and sorted(arms["single"]["verticals"]) == sorted(arm["verticals"]):
            # the single-task arm's means over the same verticals, for comparison at equal share
            for s in strategies:
                single_curve, own = arms["single"]["curves"].get(s, {}), arm["curves"].get(s, {})
                if len(own) > 1 and len(single_curve) > 1:
                    xs = sorted(single_curve)
                    ax.plot([100 * x for x in xs], [mean(single_curve[x].values()) for x in xs], ls=":", lw=1.2, alpha=0.7,
                            color=colours.get(s), label=f"{s}, single-task (means)")
            if arms["single"]["reference"]:
                rs = arms["single"]["reference"]
                ax.axhline(rs["mean"], color="grey", lw=1, ls="--", label=f"single-task, 100% of titles ({rs['mean']:.1f})")
        seeds = sorted({seed for curve in arm["curves"].values() for point in curve.values() for seed in point})
        when = "measured earlier, curves read from the previous JSON" if arm.get("previous") else "measured in this run"
        name = "single-task" if variant == "single" else "coupled with its benchmark partner"
        n_v = len(arm["verticals"])
        listed = f" ({', '.join(arm['verticals'])})" if n_v <= 3 else ""
        ax.set_title(f"{name}: {n_v} vertical{'s' if n_v > 1 else ''}{listed}, seeds {seeds}\n({when})", fontsize=9)
        ax.set_xlabel("share of the vertical's training titles labelled (%)")
        ax.set_ylabel("macro-F1 on test (mean over verticals)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Simulated annotation on OA-Mine ({command})", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def selection_stats(rows: List[dict], corpus: Path, strategies: Sequence[str], variant: str = "single") -> List[str]:
    """What each strategy picked (one arm's runs): mean length in tokens and attribute spans of the titles it added
    over the rounds, against the whole training split, and the duplicates it skipped."""
    import spacy

    from spacy_mtlave.training.corpus import read_docbin

    vocab = spacy.blank("en").vocab
    cache: Dict[str, list] = {}
    added: Dict[str, List[Tuple[int, int]]] = {s: [] for s in strategies}
    skipped: Dict[str, Dict[str, int]] = {s: {} for s in strategies}
    everything: List[Tuple[int, int]] = []
    by_key = {(r["variant"], r["vertical"], r["seed"], r["strategy"], r["share"]): r for r in rows}
    shares = sorted({r["share"] for r in rows if r["variant"] == variant and r["strategy"] != "all"})
    for r in rows:
        if r["variant"] != variant or r["strategy"] not in strategies or "labelled" not in r:
            continue
        if r["vertical"] not in cache:
            cache[r["vertical"]] = read_docbin(corpus / slug(r["vertical"]) / "train.spacy", vocab)
            everything += [(len(d), len(d.ents)) for d in cache[r["vertical"]]]
        docs = cache[r["vertical"]]
        earlier = [s for s in shares if s < r["share"]]
        if not earlier:
            continue
        prev_share = earlier[-1]
        prev = by_key.get((variant, r["vertical"], r["seed"], r["strategy"], prev_share)) or by_key.get((variant, r["vertical"], r["seed"], "start", prev_share))
        if prev is None or "labelled" not in prev:
            continue
        new = set(r["labelled"]) - set(prev["labelled"])
        added[r["strategy"]] += [(len(docs[i]), len(docs[i].ents)) for i in new]
        for reason, n in (r.get("duplicates_skipped") or {}).items():
            skipped[r["strategy"]][reason] = skipped[r["strategy"]].get(reason, 0) + n
    if not everything:
        return []
    name = "single-task" if variant == "single" else "coupled"
    lines = [f"What the strategies chose ({name} runs, all rounds, verticals and seeds):", "",
             "| titles | tokens per title | attribute spans per title | duplicates skipped while choosing |", "|---|---|---|---|",
             f"| whole training split | {mean(t for t, _ in everything):.1f} | {mean(e for _, e in everything):.1f} | |"]
    for s in strategies:
        if added[s]:
            dup = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped[s].items())) or "0"
            lines.append(f"| added by {s} | {mean(t for t, _ in added[s]):.1f} | {mean(e for _, e in added[s]):.1f} | {dup} |")
    return lines


def tabulate(a) -> None:
    raws = [a.raw, *a.more_raw]
    rows = list(done_keys(*raws).values())
    previous = list(a.previous_variants or []) if a.previous_json is not None else []
    if a.previous_json is not None and not previous:
        raise SystemExit("error: --previous-json needs --previous-variants (which arms to read from it)")
    clash = sorted({r["variant"] for r in rows} & set(previous))
    if clash:
        raise SystemExit(f"error: raw rows of {clash} in {[str(p) for p in raws]} and --previous-variants {previous}: read each arm from one place")
    if not rows and not previous:
        raise SystemExit(f"error: {a.raw}: no results")
    if a.single_reference is not None and "single" not in previous:
        have = {(r["vertical"], r["seed"]) for r in rows if r["variant"] == "single" and r["strategy"] == "all"}
        verticals = sorted({r["vertical"] for r in rows if r["variant"] == "single"})
        seeds = sorted({r["seed"] for r in rows if r["variant"] == "single"})
        rows += [r for r in single_reference_runs(a.single_reference, verticals, seeds) if (r["vertical"], r["seed"]) not in have]
    coupled = sorted({r["vertical"] for r in rows if r["variant"] == "coupled"})
    if a.coupled_reference is not None and coupled:
        have = {(r["vertical"], r["seed"]) for r in rows if r["variant"] == "coupled" and r["strategy"] == "all"}
        seeds = sorted({r["seed"] for r in rows if r["variant"] == "coupled"})
        rows += [r for r in reference_runs(a.coupled_reference, coupled, a.coupled_reference_seeds or seeds) if (r["vertical"], r["seed"]) not in have]
    command = "python benchmarks/active_learning.py " + " ".join(f"'{x}'" if " " in x else x for x in sys.argv[1:])
    arms: Dict[str, dict] = {}
    for variant in ("single", "coupled"):
        if variant in previous:
            arms[variant] = arm_from_previous(a.previous_json, variant, a.strategies)
            continue
        files = _raw_files_with(variant, raws)
        when = sorted({time.strftime("%Y-%m-%d", time.gmtime(p.stat().st_mtime)) for p in files})
        by = f"measured by `{a.grid_command}`" if getattr(a, "grid_command", None) else "measured by this script"
        arm = arm_from_rows(rows, variant, a.strategies, provenance=f"{by}, raw rows in {', '.join(f'`{p}`' for p in files)} "
                            f"(last written {', '.join(when)})")
        if arm is not None:
            arm["selection"] = selection_stats(rows, a.corpus, a.strategies, variant)
            arms[variant] = arm
    parts = [f"Command: `{command}`. Test split, macro-F1 (token level, without O) x100, mean +- sd over seeds of the mean over verticals.", ""]
    out: Dict = {"command": command, "variants": {}}
    for variant, arm in arms.items():
        md, data = summary_tables(arm)
        if not md:
            md = "(no seed has every vertical's curve yet)"
        name = "Single-task" if variant == "single" else "Coupled with the benchmark partner (train-pair, partner at 100%)"
        models = f"{arm['models']} models trained, {arm['minutes']} min of training" if arm.get("models") is not None else "models trained: not recorded"
        models += f" (wall clock{'; ' + arm['models_note'] if arm.get('models_note') else ''})"
        parts += [f"## {name}: {', '.join(arm['verticals'])}; seeds {data['seeds']}", "", f"Rows: {arm.get('shown_provenance', arm['provenance'])}.", "", md, "",
                  "Per vertical (mean +- sd over seeds):", "", vertical_table(arm) if arm["per_vertical"] else
                  "(not in the previous JSON or markdown: see the previous version of `docs/results/active_learning.md` in git)", ""]
        if arm["selection"]:
            parts += arm["selection"] + [""]
        parts += [f"{models}.", ""]
        out["variants"][variant] = dict(
            data, verticals=arm["verticals"], provenance=arm["provenance"], models=arm.get("models"), minutes=arm.get("minutes"),
            models_note=arm.get("models_note", ""), selection=arm["selection"],
            per_vertical={v: {s: {f"{share:g}": stat for share, stat in points.items()} for s, points in by_s.items()} for v, by_s in arm["per_vertical"].items()},
            per_vertical_reference=arm["per_vertical_reference"])
    if "single" in arms and "coupled" in arms:
        md, data = comparison(arms["single"], arms["coupled"], a.strategies)
        if md:
            intro = ["Coupled minus single-task mean macro-F1 over the same verticals (in units of the larger of the two sds over seeds; "
                     "seed by seed, the two arms start from the same 20% of titles):", ""] if data else []
            parts += ["## Coupled against single-task at equal label share", "", *intro, md, ""]
            out["coupled_vs_single"] = data
    a.output.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.output}.md").write_text("\n".join(parts).rstrip("\n") + "\n", encoding="utf8")
    Path(f"{a.output}.json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf8")
    figure(arms, a.strategies, Path(f"{a.output}.png"), "python benchmarks/active_learning.py, test split; points without error bars: 1 seed")
    print("\n".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--vectors", type=Path, default=Path("vectors/glove-6b-50d"))
    parser.add_argument("--verticals", nargs="*", default=[p[0] for p in PAIRS])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--start", type=float, default=0.2)
    parser.add_argument("--step", type=float, default=0.1)
    parser.add_argument("--stop", type=float, default=0.6)
    parser.add_argument("--shares", type=float, nargs="*", default=None, help="the rounds' shares (default: --start to --stop by --step); the first is the start")
    parser.add_argument("--near-duplicate", type=float, default=0.8)
    parser.add_argument("--no-reference", dest="reference", action="store_false", help="do not train the 100%% reference")
    parser.add_argument("--reference-variants", nargs="+", default=["single"], choices=["single", "coupled"])
    parser.add_argument("--coupled-verticals", nargs="+", default=[], help="verticals also run coupled with their partner")
    parser.add_argument("--coupled-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--raw", type=Path, default=Path("training/active_learning/raw.jsonl"))
    parser.add_argument("--output", type=Path, default=Path("docs/results/active_learning"))
    parser.add_argument("--more-raw", type=Path, nargs="*", default=[], help="more raw files to tabulate with --raw (runs split over processes)")
    parser.add_argument("--single-reference", type=Path, default=None, help="the low-resource runs (training/low_resource) whose single-task 100%% runs fill in a missing reference")
    parser.add_argument("--coupled-reference", type=Path, default=None, help="the low-resource runs (training/low_resource) whose 100%% coupled runs are the coupled reference")
    parser.add_argument("--coupled-reference-seeds", type=int, nargs="*", default=None)
    parser.add_argument("--previous-json", type=Path, default=None,
                        help="a previous tabulation's JSON (--output's .json) to read arms from whose raw files are gone")
    parser.add_argument("--previous-variants", nargs="*", default=None, choices=["single", "coupled"],
                        help="the arms read from --previous-json instead of from raw rows")
    parser.add_argument("--grid-command", default=None, help="with --table-only: the command that wrote the raw rows, said in the document")
    parser.add_argument("--table-only", action="store_true")
    a = parser.parse_args()
    if not a.table_only:
        run_grid(a)
    tabulate(a)


if __name__ == "__main__":
    main()
