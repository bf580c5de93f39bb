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
come, so a partial run keeps what finished; ``--table-only`` tabulates them.

    OMP_NUM_THREADS=1 python benchmarks/active_learning.py --seeds 0 1 2 --raw training/active_learning/raw.jsonl \\
        --output docs/results/active_learning

Rounds are scored on the test split because that is the protocol of an annotation simulation (the learning curve is
the result); no setting of the strategies or of training was chosen on it.
"""
import argparse
import io
import json
import random
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
        rng = random.Random(seed)
        order = list(range(total))
        rng.shuffle(order)
        start = sorted(order[: int(round(a.start * total))])
        base_nlp, head, scores = train_and_score(start)
        record({"variant": variant, "vertical": vertical, "seed": seed, "strategy": "start", "share": shares[0], "n": len(start), **scores, "labelled": start})
        log(f"{variant} {vertical} seed {seed} start {shares[0]:.0%} (n={len(start)}): macro-F1 {scores['macro_f1']:.3f} ({scores['seconds']:.0f}s)")
        for strategy in a.strategies:
            labelled, nlp = list(start), base_nlp
            for share in shares[1:]:
                size = int(round(share * total)) - len(labelled)
                taken = set(labelled)
                pool = [i for i in range(total) if i not in taken]
                texts = [train_all[i].text for i in pool]
                chosen, skipped = rank_and_choose(texts, size, strategy, pool_scores(nlp, head, texts, vertical, strategy),
                                                  seed=seed * 1000 + int(round(share * 100)), near_duplicate=a.near_duplicate,
                                                  known=[train_all[i].text for i in labelled], fill=True)
                labelled = sorted(labelled + [pool[i] for i in chosen])
                nlp, head, scores = train_and_score(labelled)
                record({"variant": variant, "vertical": vertical, "seed": seed, "strategy": strategy, "share": share, "n": len(labelled),
                        **scores, "duplicates_skipped": dict(skipped), "labelled": labelled})
                log(f"{variant} {vertical} seed {seed} {strategy} {share:.0%} (n={len(labelled)}): macro-F1 {scores['macro_f1']:.3f} ({scores['seconds']:.0f}s)")


# ---------------------------------------------------------------------------------------------------------------------
# tables and figure

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


def _ms(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f} (1 seed)"
    return f"{mean(values):.1f} +- {pstdev(values):.1f}" if values else "-"


def share_needed(curve: Dict[float, Dict[int, float]], target: float) -> Optional[float]:
    """The smallest share whose mean over seeds is at least ``target``."""
    for share in sorted(curve):
        if curve[share] and mean(curve[share].values()) >= target:
            return share
    return None


def summary_tables(rows: List[dict], variant: str, strategies: Sequence[str]) -> Tuple[str, Dict]:
    c = curves(rows, variant)
    ref = c.get("all", {}).get(1.0, {})
    shares = sorted({s for k, v in c.items() if k != "all" for s in v})
    lines = []
    data: Dict = {"variant": variant, "shares": shares, "curves": {}, "reference": None, "needed": {}}
    if not shares:
        return "", data
    seeds_used = sorted({seed for v in c.values() for point in v.values() for seed in point})
    head = "| strategy | " + " | ".join(f"{100 * s:g}%" for s in shares) + " | share needed to reach 100% - 1 sd |"
    lines += [head, "|---|" + "---|" * (len(shares) + 1)]
    target = None
    if ref:
        target = mean(ref.values()) - pstdev(ref.values())
        data["reference"] = {"mean": mean(ref.values()), "sd": pstdev(ref.values()), "seeds": sorted(ref)}
    for s in strategies:
        curve = c.get(s, {})
        cells = [_ms(list(curve.get(share, {}).values())) for share in shares]
        needed = share_needed(curve, target) if target is not None else None
        data["curves"][s] = {f"{share:g}": curve.get(share, {}) for share in shares}
        data["needed"][s] = needed
        if target is None:
            need = "no reference"
        elif needed is None:
            need = f"not reached by {100 * shares[-1]:g}%"
        else:
            need = f"{100 * needed:g}%"
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {need} |")
    if ref:
        lines.append(f"| all titles (100%, reference) | {_ms(list(ref.values()))} (seeds {sorted(ref)}) |" + " |" * len(shares))
    md = "\n".join(lines)
    # uncertainty vs random at each share, in units of random's sd
    gains = []
    for s in strategies:
        if s == "random":
            continue
        row = [s]
        for share in shares:
            u, r = list(c.get(s, {}).get(share, {}).values()), list(c.get("random", {}).get(share, {}).values())
            sd = max(pstdev(u), pstdev(r)) if u and r else 0.0
            if u and r and min(len(u), len(r)) > 1 and sd > 0:
                row.append(f"{mean(u) - mean(r):+.1f} ({(mean(u) - mean(r)) / sd:+.1f} sd)")
            elif u and r:
                row.append(f"{mean(u) - mean(r):+.1f} (1 seed)")
            else:
                row.append("-")
        gains.append("| " + " | ".join(row) + " |")
    if gains:
        md += "\n\nGain over random (mean macro-F1 difference; in units of the larger of the two sds over seeds):\n\n"
        md += "| strategy | " + " | ".join(f"{100 * s:g}%" for s in shares) + " |\n|---|" + "---|" * len(shares) + "\n" + "\n".join(gains)
    data["seeds"] = seeds_used
    return md, data


def vertical_table(rows: List[dict], variant: str, strategies: Sequence[str]) -> str:
    pv = per_vertical(rows, variant)
    ref = {}
    for r in rows:
        if r["variant"] == variant and r["strategy"] == "all":
            ref.setdefault(r["vertical"], []).append(100 * r["macro_f1"])
    shares = sorted({s for v in pv.values() for st in v.values() for s in st})
    lines = ["| vertical | strategy | " + " | ".join(f"{100 * s:g}%" for s in shares) + " | 100% |", "|---|---|" + "---|" * (len(shares) + 1)]
    for vertical in sorted(pv):
        for s in strategies:
            cells = [_ms(pv[vertical].get(s, {}).get(share, [])) for share in shares]
            lines.append(f"| {vertical} | {s} | " + " | ".join(cells) + f" | {_ms(ref.get(vertical, []))} |")
    return "\n".join(lines)


def figure(rows: List[dict], variants: Sequence[str], strategies: Sequence[str], path: Path, command: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [v for v in variants if any(k != "all" for k in curves(rows, v))]
    if not present:
        return
    fig, axes = plt.subplots(1, len(present), figsize=(6 * len(present), 4.5), squeeze=False)
    for ax, variant in zip(axes[0], present):
        c = curves(rows, variant)
        for k, s in enumerate(strategies):
            curve = c.get(s, {})
            xs = sorted(curve)
            if len(xs) < 2:  # a strategy not run in this variant (only the shared start)
                continue
            ax.errorbar([100 * x + (k - 1) * 0.6 for x in xs], [mean(curve[x].values()) for x in xs], yerr=[pstdev(curve[x].values()) for x in xs],
                        marker="o", capsize=3, label=s)
        ref = c.get("all", {}).get(1.0, {})
        if ref:
            m, sd = mean(ref.values()), pstdev(ref.values())
            ax.axhline(m, color="black", lw=1, label=f"100% of titles ({m:.1f})")
            ax.axhspan(m - sd, m + sd, color="black", alpha=0.1)
        n_v = len({r["vertical"] for r in rows if r["variant"] == variant})
        seeds = sorted({r["seed"] for r in rows if r["variant"] == variant})
        ax.set_title(f"{'single-task' if variant == 'single' else 'coupled with its benchmark partner'}: {n_v} verticals, seeds {seeds}", fontsize=10)
        ax.set_xlabel("share of the vertical's training titles labelled (%)")
        ax.set_ylabel("macro-F1 on test (mean over verticals)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Simulated annotation on OA-Mine ({command})", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def selection_stats(rows: List[dict], corpus: Path, strategies: Sequence[str]) -> List[str]:
    """What each strategy picked (single-task runs): mean length in tokens and attribute spans of the titles it added
    over the rounds, against the whole training split, and the duplicates it skipped."""
    import spacy

    from spacy_mtlave.training.corpus import read_docbin

    vocab = spacy.blank("en").vocab
    cache: Dict[str, list] = {}
    added: Dict[str, List[Tuple[int, int]]] = {s: [] for s in strategies}
    skipped: Dict[str, Dict[str, int]] = {s: {} for s in strategies}
    everything: List[Tuple[int, int]] = []
    by_key = {(r["variant"], r["vertical"], r["seed"], r["strategy"], r["share"]): r for r in rows}
    for r in rows:
        if r["variant"] != "single" or r["strategy"] not in strategies or "labelled" not in r:
            continue
        if r["vertical"] not in cache:
            cache[r["vertical"]] = read_docbin(corpus / slug(r["vertical"]) / "train.spacy", vocab)
            everything += [(len(d), len(d.ents)) for d in cache[r["vertical"]]]
        docs = cache[r["vertical"]]
        prev_share = round(r["share"] - 0.1, 4)
        prev = by_key.get(("single", r["vertical"], r["seed"], r["strategy"], prev_share)) or by_key.get(("single", r["vertical"], r["seed"], "start", prev_share))
        if prev is None or "labelled" not in prev:
            continue
        new = set(r["labelled"]) - set(prev["labelled"])
        added[r["strategy"]] += [(len(docs[i]), len(docs[i].ents)) for i in new]
        for reason, n in (r.get("duplicates_skipped") or {}).items():
            skipped[r["strategy"]][reason] = skipped[r["strategy"]].get(reason, 0) + n
    if not everything:
        return []
    lines = ["What the strategies chose (single-task runs, all rounds, verticals and seeds):", "",
             "| titles | tokens per title | attribute spans per title | duplicates skipped while choosing |", "|---|---|---|---|",
             f"| whole training split | {mean(t for t, _ in everything):.1f} | {mean(e for _, e in everything):.1f} | |"]
    for s in strategies:
        if added[s]:
            dup = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped[s].items())) or "0"
            lines.append(f"| added by {s} | {mean(t for t, _ in added[s]):.1f} | {mean(e for _, e in added[s]):.1f} | {dup} |")
    return lines + [""]


def tabulate(a) -> None:
    rows = list(done_keys(a.raw, *a.more_raw).values())
    if not rows:
        raise SystemExit(f"error: {a.raw}: no results")
    if a.single_reference is not None:
        have = {(r["vertical"], r["seed"]) for r in rows if r["variant"] == "single" and r["strategy"] == "all"}
        verticals = sorted({r["vertical"] for r in rows if r["variant"] == "single"})
        seeds = sorted({r["seed"] for r in rows if r["variant"] == "single"})
        extra = [r for r in single_reference_runs(a.single_reference, verticals, seeds) if (r["vertical"], r["seed"]) not in have]
        rows += extra
        a.reference_sources = len(extra)
    coupled = sorted({r["vertical"] for r in rows if r["variant"] == "coupled"})
    if a.coupled_reference is not None and coupled:
        seeds = sorted({r["seed"] for r in rows if r["variant"] == "coupled"})
        rows += reference_runs(a.coupled_reference, coupled, a.coupled_reference_seeds or seeds)
    command = "python benchmarks/active_learning.py " + " ".join(sys.argv[1:]).replace(" --table-only", "")
    parts = [f"Command: `{command}`. Test split, macro-F1 (token level, without O) x100, mean +- sd over seeds of the mean over verticals.", ""]
    out = {"command": command, "variants": {}}
    for variant in ("single", "coupled"):
        ran = [s for s in a.strategies if any(r["variant"] == variant and r["strategy"] == s for r in rows)]
        md, data = summary_tables(rows, variant, ran)
        if not per_vertical(rows, variant):
            continue
        if not md:
            md = "(no seed has every vertical's curve yet)"
            data.setdefault("seeds", [])
        verticals = sorted({r["vertical"] for r in rows if r["variant"] == variant})
        parts += [f"## {'Single-task' if variant == 'single' else 'Coupled with the benchmark partner (train-pair, partner at 100%)'}: "
                  f"{', '.join(verticals)}; seeds {data['seeds']}", "", md, "", "Per vertical (mean +- sd over seeds):", "", vertical_table(rows, variant, ran), ""]
        out["variants"][variant] = dict(data, verticals=verticals)
    parts += selection_stats(rows, a.corpus, a.strategies)
    seconds = sum(r.get("seconds", 0) for r in rows)
    parts.append(f"{len(rows)} models trained, {seconds / 60:.0f} min of training.")
    a.output.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.output}.md").write_text("\n".join(parts) + "\n", encoding="utf8")
    Path(f"{a.output}.json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf8")
    figure(rows, ("single", "coupled"), a.strategies, Path(f"{a.output}.png"), "python benchmarks/active_learning.py, test split; points without error bars: 1 seed")
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
    parser.add_argument("--table-only", action="store_true")
    a = parser.parse_args()
    if not a.table_only:
        run_grid(a)
    tabulate(a)


if __name__ == "__main__":
    main()
