"""Do two ave_tagger pipelines (or one pipeline in two row-cache modes) give the same spans and confidences?

Run (one torch / BLAS thread):
    OMP_NUM_THREADS=1 python benchmarks/compare_outputs.py /tmp/bench_ours/model-best /tmp/bench_ours_v2/model-best

A pipeline is ``path[@mode]`` with ``spacy_mtlave.ml.embed.ROW_CACHE = mode`` (``auto``, the default; ``features``;
``rows``; ``off``). Texts: every vertical's ``test.spacy`` under ``--corpus``, Coffee ``dev.spacy`` and a few odd inputs
(empty, whitespace, one token). Each system annotates them twice, with ``nlp(text)`` (batch 1, the row cache filling as
it goes) and with ``nlp.pipe(texts, batch_size=256)``; each (A, B) pair of runs is compared: texts whose spans (start,
end, label) differ, spans whose ``span._.confidence`` differs, and the largest confidence difference. Prints Markdown.
"""
import argparse
from pathlib import Path
from typing import Dict, List, Tuple

import spacy
import torch
from spacy.tokens import DocBin

ODD = ["", " ", "\n", "Acme", "12", "oz oz oz", "Acme Acme red red coffee coffee , , 12 oz 12 oz"]
Spans = List[List[Tuple[int, int, str, float]]]


def annotate(spec: str, texts: List[str]) -> Dict[str, Spans]:
    from spacy_mtlave.ml import embed

    path, _, mode = spec.partition("@")
    embed.ROW_CACHE = mode or "auto"
    embed.clear_row_cache()
    nlp = spacy.load(path)
    spans = lambda doc: [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents]
    return {"batch 1": [spans(nlp(t)) for t in texts], "batch 256": [spans(d) for d in nlp.pipe(texts, batch_size=256)]}


def compare(a: Spans, b: Spans) -> Tuple[int, int, int, float]:
    """(texts whose spans differ, spans compared, spans whose confidence differs, max |confidence difference|)."""
    texts_differ, n_spans, n_conf, worst = 0, 0, 0, 0.0
    for x, y in zip(a, b):
        if [s[:3] for s in x] != [s[:3] for s in y]:
            texts_differ += 1
            continue
        for s, t in zip(x, y):
            n_spans += 1
            n_conf += s[3] != t[3]
            worst = max(worst, abs(s[3] - t[3]))
    return texts_differ, n_spans, n_conf, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--corpus", default="corpus")
    args = parser.parse_args()
    torch.set_num_threads(1)
    vocab = spacy.blank("en").vocab
    paths = sorted(Path(args.corpus).glob("*/test.spacy")) + [Path(args.corpus) / "coffee" / "dev.spacy"]
    texts = ODD + [doc.text for p in paths for doc in DocBin().from_disk(p).get_docs(vocab)]
    runs = {"A": annotate(args.a, texts), "B": annotate(args.b, texts)}
    print(f"A = {args.a}, B = {args.b}; {len(texts)} texts\n")
    print("| run | vs run | texts with other spans | spans | spans with another confidence | max confidence difference |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    pairs = [(("A", "batch 1"), ("B", "batch 1")), (("A", "batch 256"), ("B", "batch 256")),
             (("A", "batch 1"), ("A", "batch 256")), (("B", "batch 1"), ("B", "batch 256"))]
    for (s, r), (t, q) in pairs:
        texts_differ, n_spans, n_conf, worst = compare(runs[s][r], runs[t][q])
        print(f"| {s} {r} | {t} {q} | {texts_differ} | {n_spans:,} | {n_conf:,} | {worst:.2g} |")


if __name__ == "__main__":
    main()
