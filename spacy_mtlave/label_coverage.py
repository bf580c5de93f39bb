"""What a doc's gold labels cover, for training on incomplete labels (issue 16).

- ``doc._.partial_labels``: True when the doc's spans are known to be incomplete (a value the source did not list may
  still be in the text, e.g. docs tagged from a key/value specification); None or False: complete.
- ``doc._.known_attributes``: the attributes the doc's source listed (a specification's keys, placeholders such as
  "NA" included: the seller said the value is absent), or None when unknown (then the labels of the doc's spans).

Both live in ``doc.user_data`` and survive ``DocBin(store_user_data=True)``."""
from typing import Iterable, List, Optional

from spacy.tokens import Doc

if not Doc.has_extension("partial_labels"):
    Doc.set_extension("partial_labels", default=None)
if not Doc.has_extension("known_attributes"):
    Doc.set_extension("known_attributes", default=None)


def mark_partial(doc: Doc, known_attributes: Optional[Iterable[str]]) -> None:
    """Flag ``doc`` as partially labelled and record the attributes its source listed."""
    doc._.partial_labels = True
    doc._.known_attributes = None if known_attributes is None else sorted(set(known_attributes))


def is_partial(doc: Doc) -> bool:
    return bool(doc._.partial_labels)


def known_attributes(doc: Doc) -> List[str]:
    """The attributes ``doc``'s source listed; without a record, the labels of its spans."""
    known = doc._.known_attributes
    if known is None:
        return sorted({ent.label_ for ent in doc.ents})
    return list(known)
