"""spacy_mtlave: multi-task attribute-value extraction (Jain et al.) as spaCy pipelines.

Importing the package registers the architectures, components, reader, batchers, logger, optimizer and scorer
(spaCy also finds them through entry points, so ``spacy train`` and ``spacy.load`` need no ``--code``).

Layout, in the order data travels: ``convert`` (input files -> per-vertical ``.spacy`` corpora), ``training``
(readers, batchers, the train commands, checkpoints, per-vertical export, run.json), ``ml`` (thinc and torch only:
embedding, encoder, CRF, coupling loss, shortlist, registered architectures), ``pipeline`` (the ``ave_tagger`` and
``ave_coupling`` components), ``evaluation`` (metrics, evaluate, report); the user commands (``cli``, ``extract``,
``show``, ``package``) at the top, with the rules they share for bad input: ``json_input`` (how JSON is read),
``outputs`` (checked first, written to a temporary file and moved into place) and ``fork_safety`` (our components in
forked worker processes, e.g. ``nlp.pipe(n_process=2)``).
"""
from . import fork_safety, vertical  # noqa: F401  vertical registers Doc._.vertical
from .ml.coupling_model import build_coupling_model_v3, build_group_coupling_model_v2  # noqa: F401
from .ml.embed import build_word_char_embed  # noqa: F401
from .ml.encoder import build_bilstm_encoder  # noqa: F401
from .ml.optimizers import create_lazy_adam  # noqa: F401
from .ml.tagger_model import build_bilstm_crf_tagger  # noqa: F401
from .pipeline.coupling import CouplingComponent, make_ave_coupling  # noqa: F401
from .pipeline.scorer import make_ave_scorer  # noqa: F401
from .pipeline.tagger import AVETagger, make_ave_tagger  # noqa: F401
from .training.batchers import create_vertical_batcher_v2  # noqa: F401
from .training.checkpoints import create_vertical_checkpoints  # noqa: F401
from .training.corpus import create_vertical_corpus_v2  # noqa: F401

fork_safety.register()  # nlp.pipe(n_process=...) must not hang in forked workers

__version__ = "0.1.0"
