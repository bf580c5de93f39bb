"""``spacy_mtlave.product_tokenizer.v1``: spaCy's English tokenizer plus the splits catalog text needs.

Catalog titles glue values to their neighbours with ``,`` ``/`` ``-`` and digits: ``Patent,14``, ``White,11``,
``Black/``, ``Shoe-49``, ``(180Tablets)``, ``C+Zinc``. spaCy's rules keep those as one token, so a value inside them
cannot be a span. The extra rules split:

- a comma with a letter on either side (``White,11`` -> ``White`` ``,`` ``11``; ``1,000`` stays whole);
- a hyphen between a letter and a digit (``Shoe-49``; ``X-Alp`` and ``2051-014099`` are split by spaCy already);
- a plus sign between letters or a letter and a digit (``C+Zinc``; ``10+`` is spaCy's own suffix rule);
- a slash at the start or end of a token (``Black/``; ``Black/White`` is split by spaCy already, ``1/2`` stays);
- two or more letters after digits, as a suffix (``180Tablets`` -> ``180`` ``Tablets``, ``10pk``; ``B12``, ``4K`` and
  ``X100`` stay whole).

A value that spans several tokens keeps its text: ``Black/Moonlight`` is three tokens and one span. The rules are
stored with a saved pipeline's tokenizer, so ``spacy.load`` restores them."""
from typing import Callable, List

from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex, registry

PRODUCT_INFIXES: List[str] = [
    r"(?<=[A-Za-z]),(?=[^\s,])",
    r"(?<=[^\s,]),(?=[A-Za-z])",
    r"(?<=[A-Za-z])-(?=[0-9])",
    r"(?<=[A-Za-z0-9])\+(?=[A-Za-z])",
    r"(?<=[A-Za-z])\+(?=[0-9])",
]
PRODUCT_PREFIXES: List[str] = [r"/"]
PRODUCT_SUFFIXES: List[str] = [r"/", r"(?<=[0-9])[A-Za-z]{2,}"]


def product_tokenizer(nlp: Language) -> Tokenizer:
    """The language's default tokenizer with the product rules added to its prefixes, suffixes and infixes."""
    defaults = nlp.Defaults
    return Tokenizer(
        nlp.vocab,
        rules=defaults.tokenizer_exceptions,
        prefix_search=compile_prefix_regex(list(defaults.prefixes or []) + PRODUCT_PREFIXES).search,
        suffix_search=compile_suffix_regex(list(defaults.suffixes or []) + PRODUCT_SUFFIXES).search,
        infix_finditer=compile_infix_regex(list(defaults.infixes or []) + PRODUCT_INFIXES).finditer,
        token_match=defaults.token_match,
        url_match=defaults.url_match,
    )


@registry.tokenizers("spacy_mtlave.product_tokenizer.v1")
def create_product_tokenizer() -> Callable[[Language], Tokenizer]:
    """For configs: ``[nlp.tokenizer] @tokenizers = "spacy_mtlave.product_tokenizer.v1"``."""
    return product_tokenizer
