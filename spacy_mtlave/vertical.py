"""The vertical (product category) a Doc belongs to: ``doc._.vertical``.

Stored in ``doc.user_data`` so it survives ``DocBin(store_user_data=True)`` round trips.
"""
import re
from typing import Optional

from spacy.tokens import Doc

if not Doc.has_extension("vertical"):
    Doc.set_extension("vertical", default=None)


def slugify(vertical: str) -> str:
    """Folder-safe name: lower-cased, non-alphanumerics -> ``_`` (``Laundry Detergent`` -> ``laundry_detergent``)."""
    return re.sub(r"[^0-9a-z]+", "_", vertical.lower()).strip("_")


def get_vertical(doc: Doc) -> Optional[str]:
    return doc._.vertical


def set_vertical(doc: Doc, vertical: Optional[str]) -> None:
    doc._.vertical = vertical
