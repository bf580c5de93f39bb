"""``spacy_mtlave.ave_scorer.v1``: spaCy's span scores plus the benchmark's token-level macro metric."""
from typing import Any, Callable, Dict, Iterable, Optional

from spacy.training import Example
from spacy.util import registry

from ..evaluation.metrics import score_examples
from ..vertical import get_vertical


def score_ave(examples: Iterable[Example], vertical: Optional[str] = None, key_suffix: Optional[str] = None, **kwargs: Any) -> Dict[str, Any]:
    """``ents_p/r/f``, ``ents_per_type``, ``ave_macro_p/r/f`` and ``ave_acc`` over the examples.

    With ``vertical`` (a tagger bound to one vertical in a shared pipeline), only that vertical's examples are
    scored; with ``key_suffix`` every key gets ``_<key_suffix>`` (``ave_macro_f_tagger_v1``) so that several taggers
    of one pipeline can report.
    """
    if vertical is not None:
        examples = [eg for eg in examples if get_vertical(eg.reference) in (None, vertical)]
    s = score_examples(examples)
    scores = {
        "ents_p": s["ents_p"],
        "ents_r": s["ents_r"],
        "ents_f": s["ents_f"],
        "ents_per_type": s["ents_per_type"],
        "ave_macro_p": s["macro_p"],
        "ave_macro_r": s["macro_r"],
        "ave_macro_f": s["macro_f1"],
        "ave_acc": s["accuracy"],
    }
    if key_suffix is None:
        return scores
    return {f"{key}_{key_suffix}": value for key, value in scores.items()}


@registry.scorers("spacy_mtlave.ave_scorer.v1")
def make_ave_scorer() -> Callable[..., Dict[str, Any]]:
    return score_ave
