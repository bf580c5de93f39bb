"""Why does (or doesn't) the coupling loss help? For trained pair runs, on their training data only:

- the shortlist L: size, and which gold tag pairs it ties (O-O, the same tag, one side O, two different non-O tags);
- the trained attention: mean entropy of the context and label attention over each anchor's partner set, relative to the
  uniform distribution (1.0 = uniform, 0.0 = all mass on one partner), and the mass it puts on same-tag partners;
- how far the learned diagonal ``a`` moved from its init (ones).

    python benchmarks/coupling_diagnostics.py training/results/*/seed0/full training/results/*/seed0/full_kgram
"""
import argparse
from pathlib import Path

import numpy
import spacy
import srsly
import torch

from spacy_mtlave.ml.coupling_loss import PairBatch
from spacy_mtlave.training.corpus import create_vertical_corpus


def diagnose(run_dir: Path) -> dict:
    info = srsly.read_json(run_dir / "run.json")
    nlp = spacy.load(run_dir / "joint" / "model-best")
    coupling = nlp.get_pipe("coupling")
    taggers = [nlp.get_pipe(name) for name in coupling.cfg["taggers"]]
    corpora = {v: (run_dir / e["corpus"]).resolve() for v, e in info["verticals"].items()}
    paths = {f"v{i}": str(corpora[t.vertical] / "train.spacy") for i, t in enumerate(taggers, start=1)}
    coupling.prepare(taggers, list(create_vertical_corpus(paths)(nlp)))
    state = coupling.states["0-1"]
    tags = [numpy.asarray(coupling.cfg["tags1"]), numpy.asarray(coupling.cfg["tags2"])]
    c1, c2 = state.shortlist.pairs()
    t1, t2 = tags[0][state.sides[0].tags[c1]], tags[1][state.sides[1].tags[c2]]
    o1, o2 = t1 == "O", t2 == "O"
    row = {
        "run": str(run_dir),
        "pairs in L": len(c1),
        "O-O": float(numpy.mean(o1 & o2)),
        "same tag": float(numpy.mean((t1 == t2) & ~o1)),
        "one side O": float(numpy.mean(o1 != o2)),
        "different tags": float(numpy.mean(~o1 & ~o2 & (t1 != t2))),
    }
    module = coupling.pair_module("0-1")
    anchors = numpy.flatnonzero(state.partners[0].counts())
    partners, mask = state.padded(0, anchors)
    A, P = state.sides
    batch = PairBatch(
        torch.from_numpy(A.U[anchors]), torch.from_numpy(P.U[partners]), torch.from_numpy(mask),
        torch.zeros(len(anchors)), torch.zeros(mask.shape), torch.from_numpy(A.tags[anchors]), torch.from_numpy(P.tags[partners]),
    )
    same = tags[0][A.tags[anchors]][:, None] == tags[1][P.tags[partners]]
    with torch.no_grad():
        for kind, attention in (("context", module.context_attention(batch, "12")), ("label", module.label_attention(batch, "12"))):
            att = attention.numpy()
            entropy = -numpy.where(mask, att * numpy.log(numpy.maximum(att, 1e-12)), 0.0).sum(1)
            n = mask.sum(1)
            keep = n > 1
            row[f"{kind} entropy / uniform"] = float(numpy.mean(entropy[keep] / numpy.log(n[keep])))
            row[f"{kind} mass on same tag"] = float(numpy.mean((att * same * mask).sum(1)))
        row["uniform mass on same tag"] = float(numpy.mean((same & mask).sum(1) / numpy.maximum(n, 1)))
        row["|a - 1| max"] = float(max((module.a1 - 1).abs().max(), (module.a2 - 1).abs().max()))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    rows = [diagnose(run) for run in parser.parse_args().runs]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(f"{row[k]:.2f}" if isinstance(row[k], float) else str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
