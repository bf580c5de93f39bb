"""Time and peak memory of the blocked context-pair shortlist against the naive full similarity matrix.

Run: python benchmarks/bench_shortlist.py [--sizes 1000 10000 100000 --thresh 0.8 --top-k 10]
Each (method, size) runs in its own subprocess so its peak RSS (ru_maxrss) is its own. Inputs are clustered random
vectors (d=50, ~100 contexts per cluster per side) so that the threshold keeps some pairs. The naive method builds the
full n x n matrix and is only run up to --naive-max; where both run, their pair sets are compared. Prints Markdown.
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Dict, Tuple

import numpy as np

from spacy_mtlave.ml.shortlist import build_shortlist


def clustered(n: int, d: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Two [n, d] float32 sets of points around shared random unit centers (same-cluster cosine ~0.85)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(10, n // 100), d)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    sides = []
    for _ in range(2):
        points = centers[rng.integers(0, len(centers), n)]
        sides.append((points + 0.06 * rng.standard_normal((n, d))).astype(np.float32))
    return sides[0], sides[1]


def naive_pairs(U1: np.ndarray, U2: np.ndarray, thresh: float, top_k: int) -> np.ndarray:
    """Pair codes c1 * n2 + c2 of the top_k-per-side shortlist, from the full [n1, n2] similarity matrix."""
    X1 = U1 / np.linalg.norm(U1, axis=1, keepdims=True)
    X2 = U2 / np.linalg.norm(U2, axis=1, keepdims=True)
    S = X1 @ X2.T
    n2 = S.shape[1]
    codes = []
    for M, transposed in ((S, False), (S.T, True)):
        top = np.argpartition(-M, top_k - 1, axis=1)[:, :top_k]
        owners = np.repeat(np.arange(len(M)), top_k)
        others = top.ravel()
        keep = M[owners, others] > np.float32(thresh)
        c1, c2 = (others, owners) if transposed else (owners, others)
        codes.append(c1[keep].astype(np.int64) * n2 + c2[keep])
    return np.unique(np.concatenate(codes))


def worker(method: str, n: int, thresh: float, top_k: int, seed: int) -> Dict[str, object]:
    U1, U2 = clustered(n, 50, seed)
    rss_inputs = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    begin, cpu_begin = time.perf_counter(), time.process_time()
    if method == "blocked":
        shortlist = build_shortlist(U1, U2, thresh, top_k=top_k)
        c1, c2 = shortlist.pairs()
        codes = c1.astype(np.int64) * n + c2
        extra = {"summary": shortlist.summary()}
    else:
        codes = naive_pairs(U1, U2, thresh, top_k)
        extra = {}
    seconds, cpu_seconds = time.perf_counter() - begin, time.process_time() - cpu_begin
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.save(f"/tmp/bench_shortlist_{method}_{n}.npy", codes)
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_mb": rss / 1024, "extra_mb": (rss - rss_inputs) / 1024,
            "n_pairs": len(codes), **extra}


def run(method: str, n: int, args: argparse.Namespace) -> Dict[str, object]:
    command = [sys.executable, __file__, "--worker", method, "--sizes", str(n), "--thresh", str(args.thresh),
               "--top-k", str(args.top_k), "--seed", str(args.seed)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--thresh", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--naive-max", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=["blocked", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.sizes[0], args.thresh, args.top_k, args.seed)))
        return
    print(f"thresh={args.thresh} top_k={args.top_k} d=50, n contexts per side; peak RSS includes python + inputs\n")
    print("| n per side | method | build s | CPU s (all threads) | peak RSS MB | RSS over inputs MB | pairs in L | "
          "median partners 1->2 | contexts with a partner (1->2) | same pairs as naive |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        blocked = run("blocked", n, args)
        stats = blocked["summary"]["partners_12"]
        same = "-"
        rows = [("blocked", blocked)]
        if n <= args.naive_max:
            naive = run("naive", n, args)
            rows.append(("naive", naive))
            a, b = (np.load(f"/tmp/bench_shortlist_{m}_{n}.npy") for m in ("blocked", "naive"))
            same = "yes" if np.array_equal(a, b) else f"no ({len(np.setxor1d(a, b))} differ)"
        for method, result in rows:
            detail = (f"{stats['median']:.0f} | {stats['n_with_partner']} | {same}" if method == "blocked"
                      else "- | - | -")
            print(f"| {n} | {method} | {result['seconds']:.2f} | {result['cpu_seconds']:.2f} | {result['peak_mb']:.0f} | "
                  f"{result['extra_mb']:.0f} | {result['n_pairs']} | {detail} |")


if __name__ == "__main__":
    main()
