"""What the readers of annotation-tool exports (``spans-jsonl``, ``label-studio``) share: the vertical of a record,
checked character offsets, and turning a record's text and spans into a ``Record`` (skipped and counted, or a doc
with its spans placed on reference tokens)."""
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from spacy.language import Language

from .errors import ConvertError
from .placement import CharSpan, make_doc, resolve_overlaps, set_gold
from .records import Record, get_vertical, skip_long_text


def annotation_vertical(obj: Dict[str, Any], vertical_field: Optional[str], vertical: Optional[str], category_depth: Optional[int],
                        nested: Optional[Dict[str, Any]], nested_name: str, path: Path, line: int) -> Tuple[Optional[str], Optional[str]]:
    """(vertical, skip reason): ``vertical`` for every record, else ``vertical_field`` (top level), else
    ``<nested>.vertical`` (``nested`` is ``meta`` in spans-jsonl, ``data`` in Label Studio), else ``category`` (top
    level, then nested); none of them is a ``ConvertError``."""
    if vertical is not None or vertical_field is not None:
        return get_vertical(obj, vertical_field or "category", vertical, category_depth, path, line)
    if isinstance(nested, dict) and "vertical" in nested:
        return get_vertical(nested, "vertical", None, category_depth, path, line)
    for source in (obj, nested if isinstance(nested, dict) else {}):
        if "category" in source:
            return get_vertical(source, "category", None, category_depth, path, line)
    raise ConvertError(f"no vertical: give --vertical, or {nested_name}.vertical or category in the record", path, line, f"{nested_name}.vertical")


def check_offsets(start: Any, end: Any, text: str, path: Path, line: int, where: str, check_range: bool = True) -> None:
    """``start`` and ``end`` are integers (not booleans) and, with ``check_range``, ``0 <= start < end <= len(text)``;
    else a ``ConvertError`` naming ``where``."""
    for name, number in (("start", start), ("end", end)):
        if not isinstance(number, int) or isinstance(number, bool):
            raise ConvertError(f"expected an integer, got {number!r}", path, line, f"{where}.{name}")
    if check_range and not 0 <= start < end <= len(text):
        raise ConvertError(f"offsets [{start}, {end}) out of range for a text of {len(text)} characters", path, line, where)


def skipped_record(skip: str, line: int, repairs: List, vertical_of) -> Record:
    """A record skipped for ``skip``, counted under its vertical when ``vertical_of()`` can tell it (else none)."""
    try:
        name, _ = vertical_of()
    except ConvertError:
        name = None
    return Record(line, name, skip=skip, repairs=repairs)


def annotated_record(nlp: Language, text: str, spans: List[CharSpan], line: int, repairs: List, vertical_of) -> Record:
    """The record of an annotated text: skipped (no vertical, too long) or a doc of the reference tokenizer with
    ``spans`` placed on its tokens (expanded to token boundaries, overlaps resolved; outcomes counted)."""
    name, skip = vertical_of()
    skip = skip if name is None else skip_long_text(text, nlp.max_length)
    if skip is not None:
        return Record(line, name, skip=skip, repairs=repairs)
    doc = make_doc(nlp, text, name)
    placed, outcomes = resolve_overlaps(doc, spans)
    set_gold(doc, placed)
    return Record(line, name, doc, outcomes, repairs=repairs)
