"""``spans-jsonl``: annotation tasks after annotation, the JSONL that ``select`` writes and spaCy-based annotation tools
such as Prodigy read and write: ``{"text", "spans": [{"start", "end", "label"}], "answer"?, "meta"?}``.

- ``"answer": "reject"`` or ``"ignore"``: the record is skipped and counted (``answer reject``, ``answer ignore``);
  ``"accept"`` or no answer: converted. Any other answer is an error.
- spans: character offsets into ``text`` (token indices and ``tokens`` are ignored: the reference tokenizer decides);
  a span that does not start and end on reference token boundaries is expanded to them and counted as expanded;
  overlapping spans are resolved by ``placement.resolve_overlaps`` (longer wins), the loser counted.
- vertical: ``--vertical`` for every record, else ``--vertical-field`` (a top-level field), else ``meta.vertical``
  (``select`` writes it when the model knows its vertical), else the top-level ``category``; none of them is an error.
"""
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from spacy.language import Language

from ..json_input import type_name
from .errors import ConvertError
from .placement import CharSpan, make_doc, resolve_overlaps, set_gold
from .records import Record, get_text, get_vertical, iter_jsonl, skip_long_text

SKIP_ANSWERS = ("reject", "ignore")
ANSWERS = ("accept",) + SKIP_ANSWERS


def annotation_vertical(obj: Dict[str, Any], vertical_field: Optional[str], vertical: Optional[str], category_depth: Optional[int],
                        nested: Optional[Dict[str, Any]], nested_name: str, path: Path, line: int):
    """(vertical, skip reason) by the rule of the module docstring; ``nested`` is ``meta`` (spans-jsonl) or ``data``
    (Label Studio)."""
    if vertical is not None or vertical_field is not None:
        return get_vertical(obj, vertical_field or "category", vertical, category_depth, path, line)
    if isinstance(nested, dict) and "vertical" in nested:
        return get_vertical(nested, "vertical", None, category_depth, path, line)
    for source in (obj, nested if isinstance(nested, dict) else {}):
        if "category" in source:
            return get_vertical(source, "category", None, category_depth, path, line)
    raise ConvertError(f"no vertical: give --vertical, or {nested_name}.vertical or category in the record", path, line, f"{nested_name}.vertical")


def char_spans(spans: Any, text: str, path: Path, line: int, where: str = "spans") -> List[CharSpan]:
    """Checked ``[{"start", "end", "label"}]`` -> (start, end, label, covered text, line)."""
    if spans is None:
        return []
    if not isinstance(spans, list):
        raise ConvertError(f"expected a list, got {type_name(spans)}", path, line, where)
    out: List[CharSpan] = []
    for i, span in enumerate(spans):
        field = f"{where}[{i}]"
        if not isinstance(span, dict):
            raise ConvertError(f"expected an object, got {type_name(span)}", path, line, field)
        for name in ("start", "end", "label"):
            if name not in span:
                raise ConvertError("missing required field", path, line, f"{field}.{name}")
        start, end, label = span["start"], span["end"], span["label"]
        for name, number in (("start", start), ("end", end)):
            if not isinstance(number, int) or isinstance(number, bool):
                raise ConvertError(f"expected an integer, got {number!r}", path, line, f"{field}.{name}")
        if not isinstance(label, str) or not label.strip():
            raise ConvertError(f"expected a non-empty string, got {label!r}", path, line, f"{field}.label")
        if not 0 <= start < end <= len(text):
            raise ConvertError(f"offsets [{start}, {end}) out of range for a text of {len(text)} characters", path, line, field)
        out.append((start, end, label.strip(), text[start:end], line))
    return out


def read_spans_jsonl(
    path: Path,
    nlp: Language,
    text_fields=("text",),
    vertical_field: Optional[str] = None,
    vertical: Optional[str] = None,
    category_depth: Optional[int] = None,
) -> Iterator[Record]:
    for line, obj, repairs in iter_jsonl(path):
        answer = obj.get("answer")
        if answer is not None and answer not in ANSWERS:
            raise ConvertError(f"expected one of {', '.join(ANSWERS)}, got {answer!r}", path, line, "answer")
        text, _ = get_text(obj, text_fields, path, line)
        if answer in SKIP_ANSWERS:  # counted under its vertical when it names one
            try:
                name, _ = annotation_vertical(obj, vertical_field, vertical, category_depth, obj.get("meta"), "meta", path, line)
            except ConvertError:
                name = None
            yield Record(line, name, skip=f"answer {answer}", repairs=repairs)
            continue
        spans = char_spans(obj.get("spans"), text, path, line)
        name, skip = annotation_vertical(obj, vertical_field, vertical, category_depth, obj.get("meta"), "meta", path, line)
        skip = skip if name is None else skip_long_text(text, nlp.max_length)
        if skip is not None:
            yield Record(line, name, skip=skip, repairs=repairs)
            continue
        doc = make_doc(nlp, text, name)
        placed, outcomes = resolve_overlaps(doc, spans)
        set_gold(doc, placed)
        yield Record(line, name, doc, outcomes, repairs=repairs)
