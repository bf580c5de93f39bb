"""Words per second of trained ave_tagger pipelines against spaCy's built-in `ner`, measured side by side.

Run (one torch / BLAS thread):
    OMP_NUM_THREADS=1 python benchmarks/bench_inference.py \
        --system ours=training/results/coffee+tea/seed0/single_coffee/model-best \
        --system ours_pair=training/results/coffee+tea/seed0/full/coffee \
        --system ner=/tmp/bench_ner/model-best --test corpus/coffee/test.spacy

Texts: the test docs' texts (product titles) repeated to --n-texts, and a "long" variant where consecutive titles
are joined into descriptions of about --long-tokens tokens (same number of words). Every system runs
`nlp.pipe(texts, batch_size=...)` on the same texts; repeats are interleaved (the order of the systems rotates), so
all systems see the same machine load, and the median words/second is reported with its ratio to the --baseline
system. Batch size 1 runs on the first --batch1-words words only (it is slow and its rate is stable). The
`n_process` rows use spaCy's `nlp.pipe(n_process=...)` at the largest batch size (worker start-up included), and
for ave_tagger pipelines also `spacy_mtlave.extract.extract_lines(n_process=...)` (the pool behind
`extract --n-process`, which returns small records instead of pickled Docs). Prints Markdown.
"""
import argparse
import json
import os
import statistics
import time
from typing import Callable, Dict, Iterable, List, Tuple

import spacy
import torch
from spacy.language import Language
from spacy.tokens import DocBin

from spacy_mtlave.extract import extract_lines


def long_texts(titles: List[str], nlp: Language, n_tokens: int) -> List[str]:
    """Consecutive titles joined by ". " into texts of at least n_tokens tokens (the last one may be shorter)."""
    out, current, length = [], [], 0
    for title in titles:
        current.append(title)
        length += len(nlp.make_doc(title)) + 1
        if length >= n_tokens:
            out.append(". ".join(current))
            current, length = [], 0
    if current:
        out.append(". ".join(current))
    return out


def head_by_words(texts: List[str], nlp: Language, n_words: int) -> List[str]:
    """The shortest prefix of texts holding at least n_words tokens."""
    total = 0
    for i, text in enumerate(texts):
        total += len(nlp.make_doc(text))
        if total >= n_words:
            return texts[: i + 1]
    return texts


def run_pipe(nlp: Language, texts: List[str], batch_size: int, n_process: int) -> int:
    return sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size, n_process=n_process))


def run_extract(nlp: Language, texts: List[str], batch_size: int, n_process: int) -> int:
    lines = (json.dumps({"id": i, "input": t}).encode("utf8") for i, t in enumerate(texts))
    records = list(extract_lines(nlp, lines, batch_size=batch_size, n_process=n_process))
    if any("attributes" not in r for r in records):
        raise RuntimeError("extract_lines returned error records")
    return len(records)


def interleaved(runs: Dict[str, Callable[[], int]], repeats: int) -> Dict[str, float]:
    """Median seconds per system over `repeats` rounds; each round runs every system once, in a rotating order."""
    names = list(runs)
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            begin = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - begin)
    return {name: statistics.median(t) for name, t in times.items()}


def table(rows: Iterable[Tuple[str, str, Dict[str, float]]], names: List[str], baseline: str) -> str:
    head = "| texts | setting | " + " | ".join(f"{n} (words/s)" for n in names) + " | " + " | ".join(f"{n} / {baseline}" for n in names if n != baseline) + " |"
    lines = [head, "| --- | --- |" + " ---: |" * (2 * len(names) - 1)]
    for texts, setting, wps in rows:
        cells = [f"{wps[n]:,.0f}" if n in wps else "-" for n in names]
        ratios = [f"{wps[n] / wps[baseline]:.2f}x" if n in wps and baseline in wps else "-" for n in names if n != baseline]
        lines.append(f"| {texts} | {setting} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", action="append", required=True, help="name=pipeline_dir (repeatable)")
    parser.add_argument("--baseline", default="ner", help="the system the ratios are relative to")
    parser.add_argument("--test", default="corpus/coffee/test.spacy")
    parser.add_argument("--n-texts", type=int, default=3000)
    parser.add_argument("--long-tokens", type=int, default=300)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--batch1-words", type=int, default=5000)
    parser.add_argument("--n-process", type=int, default=2, help="0 skips the multi-process rows")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)

    systems = dict(item.split("=", 1) for item in args.system)
    if args.baseline not in systems:
        parser.error(f"--baseline {args.baseline!r} is not one of the --system names {list(systems)}")
    nlps = {name: spacy.load(path) for name, path in systems.items()}
    blank = spacy.blank("en")
    titles = [doc.text for doc in DocBin().from_disk(args.test).get_docs(blank.vocab)]
    short = (titles * (args.n_texts // len(titles) + 1))[: args.n_texts]
    variants = {"titles": short, f"long (~{args.long_tokens} tokens)": long_texts(short, blank, args.long_tokens)}
    for texts in variants.values():  # warm-up (lazy imports, allocator)
        for nlp in nlps.values():
            list(nlp.pipe(texts[:300], batch_size=64))

    print(f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"torch threads {torch.get_num_threads()}, median of {args.repeats} interleaved repeats")
    rows = []
    for label, texts in variants.items():
        words = len([t for text in texts for t in blank.make_doc(text)])
        print(f"{label}: {len(texts)} texts, {words} words, mean {words / len(texts):.0f} words per text")
        for batch_size in args.batch_sizes:
            subset = head_by_words(texts, blank, args.batch1_words) if batch_size == 1 else texts
            n_words = len([t for text in subset for t in blank.make_doc(text)])
            runs = {name: (lambda nlp=nlp: run_pipe(nlp, subset, batch_size, 1)) for name, nlp in nlps.items()}
            seconds = interleaved(runs, args.repeats)
            rows.append((label, f"batch {batch_size}", {n: n_words / s for n, s in seconds.items()}))
        if args.n_process > 1:
            batch_size = max(args.batch_sizes)
            runs = {name: (lambda nlp=nlp: run_pipe(nlp, texts, batch_size, args.n_process)) for name, nlp in nlps.items()}
            seconds = interleaved(runs, max(1, args.repeats // 2))
            rows.append((label, f"nlp.pipe n_process={args.n_process}, batch {batch_size}", {n: words / s for n, s in seconds.items()}))
            ours = {name: nlp for name, nlp in nlps.items() if "ave_tagger" in nlp.pipe_names}
            runs = {name: (lambda nlp=nlp: run_extract(nlp, texts, batch_size, args.n_process)) for name, nlp in ours.items()}
            seconds = interleaved(runs, max(1, args.repeats // 2))
            rows.append((label, f"extract_lines n_process={args.n_process}, batch {batch_size}", {n: words / s for n, s in seconds.items()}))
    print(f"\n{table(rows, list(nlps), args.baseline)}\n\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
