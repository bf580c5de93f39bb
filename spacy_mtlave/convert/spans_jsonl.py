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
from functools import partial
from pathlib import Path
from typing import Any, Iterator, List, Optional

from spacy.language import Language

from ..json_input import type_name
from .annotations import annotated_record, annotation_vertical, check_offsets, skipped_record
from .errors import ConvertError
from .placement import CharSpan
from .records import Record, get_text, iter_jsonl

SKIP_ANSWERS = ("reject", "ignore")
ANSWERS = ("accept",) + SKIP_ANSWERS


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
        check_offsets(start, end, text, path, line, field, check_range=False)
        if not isinstance(label, str) or not label.strip():
            raise ConvertError(f"expected a non-empty string, got {label!r}", path, line, f"{field}.label")
        check_offsets(start, end, text, path, line, field)
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
        vertical_of = partial(annotation_vertical, obj, vertical_field, vertical, category_depth, obj.get("meta"), "meta", path, line)
        if answer in SKIP_ANSWERS:  # counted under its vertical when it names one
            yield skipped_record(f"answer {answer}", line, repairs, vertical_of)
            continue
        spans = char_spans(obj.get("spans"), text, path, line)
        yield annotated_record(nlp, text, spans, line, repairs, vertical_of)
