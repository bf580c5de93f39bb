"""Active learning (issue 19): rank unlabeled texts by the CRF's uncertainty (``uncertainty``), skip duplicates
(``dedupe``) and write the chosen ones as pre-filled annotation tasks (``select``); the annotations come back through
``convert --format spans-jsonl|label-studio [--merge-into CORPUS_DIR]``."""
from .uncertainty import STRATEGIES, Uncertainty, crf_uncertainty, tagger_uncertainty

__all__ = ["STRATEGIES", "Uncertainty", "crf_uncertainty", "tagger_uncertainty"]
