"""Several pipelines of one category voting on each attribute's value (an ensemble of seeds or systems).

Every pipeline proposes at most one value per attribute (its most confident span, ``scored_values``). For each
attribute the ensemble keeps the value proposed by the most pipelines (ties: the larger summed confidence, then the
earlier pipeline) and predicts it only if at least ``min_votes`` pipelines proposed it; ``min_votes`` None is a
majority (``n // 2 + 1``)."""
from typing import Dict, Mapping, Optional, Sequence, Tuple

ScoredValues = Mapping[str, Tuple[str, float]]


def majority(n_models: int) -> int:
    """Votes that make a majority of ``n_models`` (1 of 1, 2 of 2 or 3, 3 of 4 or 5)."""
    return n_models // 2 + 1


def vote_values(proposals: Sequence[ScoredValues], min_votes: Optional[int] = None) -> Dict[str, str]:
    """{attribute: value} agreed by ``proposals`` (one {attribute: (value, confidence)} per pipeline, same text)."""
    if not proposals:
        return {}
    need = majority(len(proposals)) if min_votes is None else min_votes
    if not 1 <= need <= len(proposals):
        raise ValueError(f"min_votes must be between 1 and the number of models ({len(proposals)}), got {need}")
    tally: Dict[str, Dict[str, Tuple[int, float, int]]] = {}
    for order, proposal in enumerate(proposals):
        for attribute, (value, confidence) in proposal.items():
            votes, total, first = tally.setdefault(attribute, {}).get(value, (0, 0.0, order))
            tally[attribute][value] = (votes + 1, total + confidence, first)
    agreed = {}
    for attribute, values in tally.items():
        value, (votes, _, _) = max(values.items(), key=lambda item: (item[1][0], item[1][1], -item[1][2]))
        if votes >= need:
            agreed[attribute] = value
    return agreed
