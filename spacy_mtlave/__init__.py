"""spacy_mtlave: multi-task attribute-value extraction (Jain et al.) as spaCy pipelines.

Importing the package registers the architectures, the ``ave_tagger`` factory and the scorer (spaCy also finds
them through entry points, so ``spacy train`` and ``spacy.load`` need no ``--code``).
"""
from . import vertical  # noqa: F401  registers Doc._.vertical
from .checkpoints import create_vertical_checkpoints  # noqa: F401
from .embed import build_word_char_embed  # noqa: F401
from .optimizers import create_lazy_adam  # noqa: F401
from .encoder import build_bilstm_encoder  # noqa: F401
from .pair import CouplingComponent, make_ave_coupling  # noqa: F401
from .scorer import make_ave_scorer  # noqa: F401
from .tagger import AVETagger, build_bilstm_crf_tagger, make_ave_tagger  # noqa: F401

__version__ = "0.1.0"
