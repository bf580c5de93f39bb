"""The vertical (product category) a Doc belongs to: ``doc._.vertical``.

Stored in ``doc.user_data`` so it survives ``DocBin(store_user_data=True)`` round trips.
"""
import hashlib
import re
from typing import Optional

from spacy.tokens import Doc

if not Doc.has_extension("vertical"):
    Doc.set_extension("vertical", default=None)


MAX_SLUG = 64


def slugify(vertical: str) -> str:
    """Folder-safe name: lower-cased, non-alphanumerics -> ``_`` (``Laundry Detergent`` -> ``laundry_detergent``).

    A name with no ASCII letter or digit (``咖啡``, emoji) gets ``vertical_`` and the first 10 hex digits of the SHA-1 of
    its UTF-8 bytes; a slug longer than 64 characters is cut to 53 and gets ``_`` and those 10 digits. Both are
    stable (same name, same folder) and distinct names stay distinct."""
    slug = re.sub(r"[^0-9a-z]+", "_", vertical.lower()).strip("_")
    if slug and len(slug) <= MAX_SLUG:
        return slug
    digest = hashlib.sha1(vertical.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{slug[: MAX_SLUG - 11].rstrip('_')}_{digest}" if slug else f"vertical_{digest}"


def get_vertical(doc: Doc) -> Optional[str]:
    return doc._.vertical


def set_vertical(doc: Doc, vertical: Optional[str]) -> None:
    doc._.vertical = vertical
