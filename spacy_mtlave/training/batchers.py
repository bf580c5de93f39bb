"""Batchers for joint training: every update draws from each of two verticals (``vertical_batcher``), or pairs up N
verticals (``group_batcher``); the v2 versions balance verticals of different sizes."""
import random
from typing import Callable, Dict, Iterable, Iterator, List, Optional

from spacy import util
from spacy.training import Example

from ..vertical import get_vertical


@util.registry.batchers("spacy_mtlave.vertical_batcher.v1")
def create_vertical_batcher(size: int) -> Callable[[Iterable[Example]], Iterator[List[Example]]]:
    """Batches holding up to ``size`` examples of every vertical (the paper's 30 from D1 and 30 from D2)."""

    def batch(examples: Iterable[Example]) -> Iterator[List[Example]]:
        queues: Dict[Optional[str], List[Example]] = {}
        for eg in examples:
            queues.setdefault(get_vertical(eg.reference), []).append(eg)
        start = 0
        while any(start < len(q) for q in queues.values()):
            yield [eg for q in queues.values() for eg in q[start : start + size]]
            start += size

    return batch


@util.registry.batchers("spacy_mtlave.group_batcher.v1")
def create_group_batcher(size: int, pairs: Optional[List[List[str]]] = None) -> Callable[[Iterable[Example]], Iterator[List[Example]]]:
    """Batches of ``size`` examples of each of two verticals, whatever the number of verticals: every round pairs
    up the verticals that still have examples at random (only pairs listed in ``pairs``, a list of
    [vertical, vertical]; all pairs when null) and yields one batch per pair, a vertical left without a partner
    alone. Each example is used once per epoch and a step's cost does not grow with the number of verticals."""
    allowed = None if pairs is None else {frozenset(p) for p in pairs}

    def batch(examples: Iterable[Example]) -> Iterator[List[Example]]:
        queues: Dict[Optional[str], List[Example]] = {}
        for eg in examples:
            queues.setdefault(get_vertical(eg.reference), []).append(eg)
        starts = dict.fromkeys(queues, 0)
        while True:
            active = [v for v in queues if starts[v] < len(queues[v])]
            if not active:
                return
            random.shuffle(active)
            while active:
                first = active.pop()
                partners = [v for v in active if allowed is None or frozenset((first, v)) in allowed]
                group = [first] + ([active.pop(active.index(random.choice(partners)))] if partners else [])
                yield [eg for v in group for eg in queues[v][starts[v] : starts[v] + size]]
                for v in group:
                    starts[v] += size

    return batch



class _Cycle:
    """One vertical's examples, handed out ``size`` at a time in a fresh random order each time they run out."""

    def __init__(self, examples: List[Example]):
        self.examples, self.order, self.used = examples, list(examples), 0

    def take(self, size: int) -> List[Example]:
        """The next ``size`` examples (all of them if there are fewer), never one twice in the same batch."""
        out: List[Example] = []
        while len(out) < min(size, len(self.examples)):
            if not self.order:
                fresh = random.sample(self.examples, len(self.examples))
                taken = {id(eg) for eg in out}
                self.order = [eg for eg in fresh if id(eg) not in taken] + [eg for eg in fresh if id(eg) in taken]
            out.append(self.order.pop(0))
        self.used += len(out)
        return out

    @property
    def exhausted(self) -> bool:
        """Whether every example has been handed out at least once."""
        return self.used >= len(self.examples)


def _queues(examples: Iterable[Example]) -> Dict[Optional[str], List[Example]]:
    queues: Dict[Optional[str], List[Example]] = {}
    for eg in examples:
        queues.setdefault(get_vertical(eg.reference), []).append(eg)
    return queues


@util.registry.batchers("spacy_mtlave.vertical_batcher.v2")
def create_vertical_batcher_v2(size: int) -> Callable[[Iterable[Example]], Iterator[List[Example]]]:
    """Balanced batches: every batch holds ``size`` examples of every vertical, until the largest vertical has been
    used once (one epoch); a smaller vertical starts over in a new random order when it runs out. Each vertical gets
    the same number of updates whatever its size (with v1 a vertical half the size of its partner is absent from
    half of the batches)."""

    def batch(examples: Iterable[Example]) -> Iterator[List[Example]]:
        cycles = [_Cycle(q) for q in _queues(examples).values()]
        while cycles and not all(c.exhausted for c in cycles):
            yield [eg for c in cycles for eg in c.take(size)]

    return batch


@util.registry.batchers("spacy_mtlave.group_batcher.v2")
def create_group_batcher_v2(size: int, pairs: Optional[List[List[str]]] = None) -> Callable[[Iterable[Example]], Iterator[List[Example]]]:
    """Balanced group batches: every round pairs up all verticals at random (only pairs listed in ``pairs``; all
    pairs when null) and yields ``size`` examples of each of the two per batch, a vertical left without a partner
    alone; rounds go on until every vertical has been used once (one epoch), smaller verticals starting over in a new
    random order. Every vertical gets one batch per round whatever its size."""
    allowed = None if pairs is None else {frozenset(p) for p in pairs}

    def batch(examples: Iterable[Example]) -> Iterator[List[Example]]:
        cycles = {v: _Cycle(q) for v, q in _queues(examples).items()}
        while cycles and not all(c.exhausted for c in cycles.values()):
            active = list(cycles)
            random.shuffle(active)
            while active:
                first = active.pop()
                partners = [v for v in active if allowed is None or frozenset((first, v)) in allowed]
                group = [first] + ([active.pop(active.index(random.choice(partners)))] if partners else [])
                yield [eg for v in group for eg in cycles[v].take(size)]

    return batch

