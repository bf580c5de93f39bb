"""The two `extract` engines side by side on the same 100,000 product titles: local with 1 and 2 processes, Ray with
1 and 2 worker actors (embedded Ray on this machine).

Run (from the repository root; --model: any trained pipeline, e.g. `python -m spacy_mtlave train corpus/coffee
/tmp/ray_model --vectors vectors/glove-6b-50d --seed 0`):
    python benchmarks/bench_scaling.py --model /tmp/ray_model/model-best --data ../shared/data --work /tmp/bench_scaling

Titles: Myntra product display names and Flipkart product names read from --data, cycled to --n-titles, written as
JSONL to --work (nothing is copied into the repository). Every configuration runs the real command line
(`python -m spacy_mtlave extract ... --batch-size 256`, OMP_NUM_THREADS=1) as a subprocess, so a run's wall time holds
everything a user waits for: Python start, imports, model load, Ray start and stop, workers, writing. Configurations
are interleaved round by round (the order rotates), so all see the same machine load; the median is reported.

- words/s: whitespace words of all titles / wall time of the 100,000-title run (overhead included);
- start-up: wall time of the same command on --small titles (what a run costs before it does work);
- peak memory: the process tree is sampled every 0.2 s (``VmHWM`` of each process from /proc): the largest worker
  (local: the extracting process, or each pool process; Ray: each ``ray::`` actor process), the driver, and the
  largest sum over the whole tree (Ray's own gcs_server, raylet and helpers included).

Prints Markdown and writes it to --output (default: --work/bench_scaling.md).
"""
import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

CONFIGS = [("local", 1), ("local", 2), ("ray", 1), ("ray", 2)]


def read_titles(data: Path) -> List[str]:
    """Myntra display names and Flipkart product names (deduplicated, in file order)."""
    titles: List[str] = []
    with (data / "myntra-styles" / "styles_text.csv").open(encoding="utf-8") as f:
        titles += [row["productDisplayName"] for row in csv.DictReader(f)]
    with (data / "flipkart-sample" / "id_name_price_brand_all20k__sonalkulk.csv").open(encoding="utf-8") as f:
        titles += [row["product_name"] for row in csv.DictReader(f)]
    return list(dict.fromkeys(t.strip() for t in titles if t and t.strip()))


def write_input(titles: List[str], n: int, path: Path, seed: int = 0) -> int:
    """n titles (cycled, shuffled) as JSONL; returns their whitespace word count."""
    rng = random.Random(seed)
    chosen = [titles[i % len(titles)] for i in range(n)]
    rng.shuffle(chosen)
    path.write_text("".join(json.dumps({"id": i, "input": t}, ensure_ascii=False) + "\n" for i, t in enumerate(chosen)), encoding="utf-8")
    return sum(len(t.split()) for t in chosen)


def _children() -> Dict[int, List[int]]:
    tree: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def _status(pid: int) -> Tuple[str, int, int]:
    """(command line, VmHWM kB, VmRSS kB) of a process."""
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    kb = lambda key: int(fields.get(key, "0 kB").split()[0])  # noqa: E731
    return cmd, kb("VmHWM"), kb("VmRSS")


class TreeSampler(threading.Thread):
    """Peak memory of every process under ``root`` (VmHWM), and the largest total RSS of the tree."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.peaks, self.total_peak, self.stopped = root, {}, 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            tree, todo, total = _children(), [self.root], 0
            while todo:
                pid = todo.pop()
                todo += tree.get(pid, [])
                try:
                    cmd, hwm, rss = _status(pid)
                except OSError:
                    continue
                total += rss
                self.peaks[pid] = (cmd, max(hwm, self.peaks.get(pid, ("", 0))[1]))
            self.total_peak = max(self.total_peak, total)
            self.stopped.wait(0.2)


def run(model: str, source: Path, out: Path, engine: str, n: int, batch_size: int) -> Dict[str, float]:
    """One command line run: wall seconds and peak memory (MB) of the largest worker, the driver and the tree."""
    if out.is_dir():
        shutil.rmtree(out)
    elif out.exists():
        out.unlink()
    cmd = [sys.executable, "-m", "spacy_mtlave", "extract", model, str(source), str(out), "--batch-size", str(batch_size)]
    cmd += ["--engine", "ray", "--workers", str(n)] if engine == "ray" else ["--n-process", str(n)]
    env = dict(os.environ, OMP_NUM_THREADS="1", RAY_AUTH_MODE="disabled")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    _, stderr = proc.communicate()
    seconds = time.perf_counter() - start
    sampler.stopped.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr[-2000:]}")
    driver = sampler.peaks.get(proc.pid, ("", 0))[1]
    if engine == "ray":
        workers = [kb for cmd_, kb in sampler.peaks.values() if cmd_.startswith("ray::") and "IDLE" not in cmd_] or [0]
        worker = max(workers)
    else:
        pool = [kb for pid, (cmd_, kb) in sampler.peaks.items() if pid != proc.pid and "spacy_mtlave" in cmd_]
        worker = max(pool) if n > 1 and pool else driver
    return {"seconds": seconds, "worker_mb": worker / 1024, "driver_mb": driver / 1024, "tree_mb": sampler.total_peak / 1024,
            "summary": stderr.strip().splitlines()[-1] if stderr.strip() else ""}


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_scaling"))
    parser.add_argument("--n-titles", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    titles = read_titles(args.data)
    big, small = args.work / "titles.jsonl", args.work / "small.jsonl"
    words = write_input(titles, args.n_titles, big)
    write_input(titles, args.small, small, seed=1)
    print(f"{len(titles)} distinct titles, {args.n_titles} titles, {words} words; load average before: {load_average()}", flush=True)
    results: Dict[Tuple[str, int], Dict[str, List]] = {c: {"seconds": [], "startup": [], "worker_mb": [], "driver_mb": [], "tree_mb": []} for c in CONFIGS}
    loads = [load_average()]
    for r in range(args.rounds):
        order = CONFIGS[r % len(CONFIGS):] + CONFIGS[: r % len(CONFIGS)]
        for engine, n in order:
            suffix = ".jsonl" if engine == "local" else ""
            startup = run(args.model, small, args.work / f"small_{engine}{n}{suffix}", engine, n, args.batch_size)
            full = run(args.model, big, args.work / f"out_{engine}{n}{suffix}", engine, n, args.batch_size)
            entry = results[(engine, n)]
            entry["seconds"].append(full["seconds"])
            entry["startup"].append(startup["seconds"])
            for key in ("worker_mb", "driver_mb", "tree_mb"):
                entry[key].append(full[key])
            print(f"round {r + 1} {engine} x{n}: {full['seconds']:.1f} s, start-up {startup['seconds']:.1f} s, worker "
                  f"{full['worker_mb']:.0f} MB, tree {full['tree_mb']:.0f} MB, load {load_average()} | {full['summary']}", flush=True)
            loads.append(load_average())
    med = {c: {k: statistics.median(v) for k, v in results[c].items()} for c in CONFIGS}
    rate = {c: words / med[c]["seconds"] for c in CONFIGS}
    lines = [
        f"{args.n_titles:,} titles, {words:,} words; median of {args.rounds} interleaved rounds; `--batch-size {args.batch_size}`, "
        f"OMP_NUM_THREADS=1; load average (1, 5, 15 min) at the start of each run: {'; '.join(loads)}",
        "",
        "| engine | workers | wall time (s) | words/s (overhead included) | ratio to local x2 | start-up (s, "
        f"{args.small} titles) | words/s without start-up | peak memory per worker (MB) | driver (MB) | whole process tree (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in CONFIGS:
        m = med[c]
        steady = words / max(1e-9, m["seconds"] - m["startup"])
        lines.append(f"| {c[0]} | {c[1]} | {m['seconds']:.1f} | {rate[c]:,.0f} | {rate[c] / rate[('local', 2)]:.2f}x | "
                     f"{m['startup']:.1f} | {steady:,.0f} | {m['worker_mb']:.0f} | {m['driver_mb']:.0f} | {m['tree_mb']:.0f} |")
    lines += ["", "Every run (seconds): " + "; ".join(f"{c[0]} x{c[1]}: " + ", ".join(f"{s:.1f}" for s in results[c]["seconds"]) for c in CONFIGS)]
    text = "\n".join(lines) + "\n"
    print(text)
    (args.output or args.work / "bench_scaling.md").write_text(text)


if __name__ == "__main__":
    main()
