"""``attribute-values`` JSONL (OA-Mine as processed by ExtractGPT):
``{"input": text, "category": vertical, "target_scores": {attribute: {value: 1 | {"pid": [0, 1], "score": 1}}}}``.

Several ``text_fields`` are joined by "\\n"; ``pid`` names the fields (indices into ``text_fields``) a
value may be placed in. ``{"n/a": 1}`` means the attribute is absent. Spans are placed by
``placement.place_first_occurrences`` (the BENCHMARK.md rule).
"""
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from spacy.language import Language

from ..json_input import type_name
from .errors import ConvertError
from .placement import Value, make_doc, place_first_occurrences, set_gold
from .records import (
    Record,
    get_field,
    get_text,
    get_vertical,
    iter_jsonl,
    skip_long_text,
)

ABSENT = "n/a"


def read_attribute_values(
    path: Path,
    nlp: Language,
    text_fields: Sequence[str] = ("input",),
    vertical_field: str = "category",
    vertical: Optional[str] = None,
    category_depth: Optional[int] = None,
) -> Iterator[Record]:
    for line, obj, repairs in iter_jsonl(path):
        text, ranges = get_text(obj, text_fields, path, line)
        values = _values(get_field(obj, "target_scores", path, line), ranges, path, line)
        name, skip = get_vertical(obj, vertical_field, vertical, category_depth, path, line)
        skip = skip if name is None else skip_long_text(text, nlp.max_length)
        if skip is not None:
            yield Record(line, name, skip=skip, repairs=repairs)
            continue
        doc = make_doc(nlp, text, name)
        spans, outcomes = place_first_occurrences(doc, values)
        set_gold(doc, spans)
        yield Record(line, name, doc, outcomes, repairs=repairs)


def _values(scores: Any, ranges: List[Tuple[int, int]], path: Path, line: int) -> List[Value]:
    if not isinstance(scores, dict):
        raise ConvertError(f"expected an object, got {type_name(scores)}", path, line, "target_scores")
    values: List[Value] = []
    for attribute, entries in scores.items():
        where = f"target_scores.{attribute}"
        if not attribute.strip():
            raise ConvertError("empty attribute name", path, line, where)
        if not isinstance(entries, dict):
            raise ConvertError(f"expected an object of values, got {type_name(entries)}", path, line, where)
        for value, entry in entries.items():
            if value == ABSENT:
                continue
            values.append((attribute, value, line, _allowed(entry, ranges, path, line, f"{where}.{value}")))
    return values


def _allowed(entry: Any, ranges: List[Tuple[int, int]], path: Path, line: int, where: str):
    """None (anywhere) for ``1``; the named fields' ranges for ``{"pid": [...]}``."""
    if entry == 1 and not isinstance(entry, bool):
        return None
    if not isinstance(entry, dict):
        raise ConvertError(f"expected 1 or an object with 'pid', got {entry!r}", path, line, where)
    if "pid" not in entry:
        return None
    pids = entry["pid"]
    if isinstance(pids, int) and not isinstance(pids, bool):
        pids = [pids]
    if not isinstance(pids, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in pids):
        raise ConvertError(f"'pid' must be a list of field indices, got {pids!r}", path, line, where)
    for pid in pids:
        if not 0 <= pid < len(ranges):
            raise ConvertError(f"pid {pid} is out of range for {len(ranges)} text field(s)", path, line, where)
    return [ranges[pid] for pid in pids]
