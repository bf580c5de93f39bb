"""Time our CRF against pytorch-crf (torchcrf.CRF) on identical inputs.

Run: python benchmarks/bench_crf.py [--batch 64 --length 50 --tags 77 --repeats 15]
Prints a Markdown table of median times (ms) for NLL forward+backward and
unconstrained Viterbi decoding, after checking both give the same results.
"""
import argparse
import statistics
import time
from typing import Callable, List, Tuple

import torch
from torchcrf import CRF as TorchCRF

from spacy_mtlave.ml.crf import CRF


def median_ms(ours: Callable[[], object], theirs: Callable[[], object], repeats: int) -> Tuple[float, float]:
    """Median wall times (ms) of both, interleaved so both see the same machine load."""
    times: Tuple[List[float], List[float]] = ([], [])
    ours(), theirs()  # warm-up
    for _ in range(repeats):
        for fn, out in zip((ours, theirs), times):
            begin = time.perf_counter()
            fn()
            out.append((time.perf_counter() - begin) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--tags", type=int, default=77)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    B, L, T = args.batch, args.length, args.tags

    ours = CRF(T)
    theirs = TorchCRF(T, batch_first=True)
    with torch.no_grad():
        ours.transitions.normal_()
        ours.start.normal_()
        ours.end.normal_()
        theirs.transitions.copy_(ours.transitions)
        theirs.start_transitions.copy_(ours.start)
        theirs.end_transitions.copy_(ours.end)
    emissions = torch.randn(B, L, T) * 3
    tags = torch.randint(0, T, (B, L))
    lengths = torch.randint(1, L + 1, (B,))
    lengths[0] = L  # pytorch-crf needs a full first column; one row spans the batch
    mask = torch.arange(L)[None, :] < lengths[:, None]

    def ours_nll() -> torch.Tensor:
        em = emissions.clone().requires_grad_()
        ours.zero_grad()
        nll = ours(em, tags, mask)
        nll.sum().backward()
        return nll.detach(), em.grad

    def theirs_nll() -> torch.Tensor:
        em = emissions.clone().requires_grad_()
        theirs.zero_grad()
        nll = -theirs(em, tags, mask, reduction="none")
        nll.sum().backward()
        return nll.detach(), em.grad

    def ours_decode() -> List[List[int]]:
        return ours.decode(emissions, mask, constrained=False)

    def theirs_decode() -> List[List[int]]:
        with torch.no_grad():
            return theirs.decode(emissions, mask)

    (nll_a, grad_a), (nll_b, grad_b) = ours_nll(), theirs_nll()
    assert torch.allclose(nll_a, nll_b, rtol=1e-5, atol=1e-3), (nll_a - nll_b).abs().max()
    assert torch.allclose(grad_a, grad_b, atol=2e-4), (grad_a - grad_b).abs().max()
    assert torch.allclose(ours.transitions.grad, theirs.transitions.grad, rtol=1e-4, atol=1e-3)
    assert ours_decode() == theirs_decode(), "Viterbi paths differ"

    rows = [
        ("NLL forward+backward", *median_ms(ours_nll, theirs_nll, args.repeats)),
        ("Viterbi decode", *median_ms(ours_decode, theirs_decode, args.repeats)),
    ]
    print(f"batch {B} x length {L} x {T} tags, 1 thread, median of {args.repeats}; results identical\n")
    print("| operation | ours (ms) | pytorch-crf (ms) | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    for name, mine, other in rows:
        print(f"| {name} | {mine:.2f} | {other:.2f} | {other / mine:.1f}x |")


if __name__ == "__main__":
    main()
