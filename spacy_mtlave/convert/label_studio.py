"""``label-studio``: Label Studio's JSON export (a JSON array of tasks) of a text labelling project:
``[{"id", "data": {"text", ...}, "annotations": [{"result": [{"type": "labels", "value": {"start", "end", "text",
"labels": [label]}}], "was_cancelled": false}], "predictions": [...]}]``.

- the annotation used is the task's first one that was not cancelled (``was_cancelled``); a task without annotations
  (or with ``completions``, the older name, empty) is skipped and counted (``no annotation``), one whose annotations
  were all cancelled too (``annotation cancelled``). Predictions are never used as labels.
- ``result`` items of type ``labels`` become spans (one per label of the region); other types (choices, relations,
  ratings) are ignored. Offsets are characters of ``data.text``; Label Studio counts UTF-16 code units, so when
  ``text[start:end]`` differs from the region's ``text``, the offsets are read as UTF-16 and must then match. A
  region not on reference token boundaries is expanded (counted); overlaps are resolved by
  ``placement.resolve_overlaps``.
- vertical: ``--vertical``, else ``--vertical-field`` (top level), else ``data.vertical`` (``select`` writes it), else
  ``category`` (top level or in ``data``).
- errors name the line where the task starts.
"""
import json
from functools import partial
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from spacy.language import Language

from ..json_input import SURROGATE_ESCAPE, _decoder, _replace_surrogates, type_name
from .annotations import annotated_record, annotation_vertical, check_offsets, skipped_record
from .errors import ConvertError
from .placement import CharSpan
from .records import LINE_BREAK, Record, get_text, read_text

WHITESPACE = " \t\n\r"


def _utf16_to_index(text: str, units: int) -> Optional[int]:
    """The character index at ``units`` UTF-16 code units into ``text`` (None inside a surrogate pair or past the end)."""
    count = 0
    for i, ch in enumerate(text):
        if count == units:
            return i
        count += 2 if ord(ch) > 0xFFFF else 1
    return len(text) if count == units else None


def iter_tasks(path: Path) -> Iterator[Tuple[int, Any, List]]:
    """(line where the task starts, task, repairs) for every element of the file's top-level JSON array (a single
    task object is read as an array of one)."""
    text = read_text(path)
    line, counted = 1, 0

    def line_at(pos: int) -> int:
        nonlocal line, counted
        if pos < counted:
            return len(LINE_BREAK.findall(text, 0, pos)) + 1
        line += len(LINE_BREAK.findall(text, counted, pos))
        counted = pos
        return line

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in WHITESPACE:
            pos += 1
        return pos

    def decode(pos: int):
        repairs: List = []
        try:
            value, end = _decoder(repairs).raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise ConvertError(f"malformed JSON: {err.msg} (column {_column(text, err.pos)})", path, line_at(err.pos)) from None
        except RecursionError:
            raise ConvertError("malformed JSON: nested too deeply", path, line_at(pos)) from None
        if SURROGATE_ESCAPE.search(text, pos, end):
            value = _replace_surrogates(value, repairs)
        return value, end, repairs

    pos = skip(0)
    if text[pos] != "[":
        value, end, repairs = decode(pos)
        if skip(end) != len(text):
            raise ConvertError("malformed JSON: extra data after the first value (expected Label Studio's JSON export, one array)", path, line_at(skip(end)))
        if not isinstance(value, dict):
            raise ConvertError(f"expected a JSON array of tasks, got {type_name(value)}", path, 1)
        yield line_at(pos), value, repairs
        return
    pos = skip(pos + 1)
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        start_line = line_at(pos)
        value, end, repairs = decode(pos)
        yield start_line, value, repairs
        pos = skip(end)
        if pos >= len(text):
            raise ConvertError("malformed JSON: the array is not closed", path, line_at(pos))
        if text[pos] == "]":
            if skip(pos + 1) != len(text):
                raise ConvertError("malformed JSON: extra data after the array", path, line_at(skip(pos + 1)))
            return
        if text[pos] != ",":
            raise ConvertError(f"malformed JSON: expected ',' or ']' (column {_column(text, pos)})", path, line_at(pos))
        pos = skip(pos + 1)


def _column(text: str, pos: int) -> int:
    return pos - max(text.rfind("\n", 0, pos), text.rfind("\r", 0, pos))


def _annotation(task: Dict[str, Any], path: Path, line: int) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """(the first annotation not cancelled, None) or (None, skip reason)."""
    annotations = task.get("annotations", task.get("completions"))
    if annotations is None:
        return None, "no annotation"
    if not isinstance(annotations, list):
        raise ConvertError(f"expected a list, got {type_name(annotations)}", path, line, "annotations")
    for i, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            raise ConvertError(f"expected an object, got {type_name(annotation)}", path, line, f"annotations[{i}]")
        if not annotation.get("was_cancelled"):
            return annotation, None
    return None, "annotation cancelled" if annotations else "no annotation"


def _regions(annotation: Dict[str, Any], text: str, path: Path, line: int) -> List[CharSpan]:
    result = annotation.get("result", [])
    if not isinstance(result, list):
        raise ConvertError(f"expected a list, got {type_name(result)}", path, line, "annotations.result")
    out: List[CharSpan] = []
    for i, item in enumerate(result):
        where = f"annotations.result[{i}]"
        if not isinstance(item, dict):
            raise ConvertError(f"expected an object, got {type_name(item)}", path, line, where)
        if item.get("type") != "labels":
            continue
        value = item.get("value")
        if not isinstance(value, dict):
            raise ConvertError("expected an object", path, line, f"{where}.value")
        for name in ("start", "end", "labels"):
            if name not in value:
                raise ConvertError("missing required field", path, line, f"{where}.value.{name}")
        start, end, labels = value["start"], value["end"], value["labels"]
        check_offsets(start, end, text, path, line, f"{where}.value", check_range=False)
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x.strip() for x in labels):
            raise ConvertError(f"expected a non-empty list of label names, got {labels!r}", path, line, f"{where}.value.labels")
        shown = value.get("text")
        if isinstance(shown, str) and text[start:end] != shown:
            s16, e16 = _utf16_to_index(text, start), _utf16_to_index(text, end)
            if s16 is not None and e16 is not None and text[s16:e16] == shown:
                start, end = s16, e16
            else:
                raise ConvertError(f"text[{start}:{end}] is {text[start:end]!r}, not the region's text {shown!r}", path, line, f"{where}.value")
        check_offsets(start, end, text, path, line, f"{where}.value")
        for label in labels:
            out.append((start, end, label.strip(), text[start:end], line))
    return out


def read_label_studio(
    path: Path,
    nlp: Language,
    text_fields=("text",),
    vertical_field: Optional[str] = None,
    vertical: Optional[str] = None,
    category_depth: Optional[int] = None,
) -> Iterator[Record]:
    for line, task, repairs in iter_tasks(path):
        if not isinstance(task, dict):
            raise ConvertError(f"expected a task object, got {type_name(task)}", path, line)
        data = task.get("data")
        if not isinstance(data, dict):
            raise ConvertError(f"expected an object, got {type_name(data)}", path, line, "data")
        try:
            text, _ = get_text(data, text_fields, path, line)
        except ConvertError as err:
            raise ConvertError(err.problem, path, line, f"data.{err.field}" if err.field else None) from None
        vertical_of = partial(annotation_vertical, task, vertical_field, vertical, category_depth, data, "data", path, line)
        annotation, skip = _annotation(task, path, line)
        if skip is not None:
            yield skipped_record(skip, line, repairs, vertical_of)
            continue
        yield annotated_record(nlp, text, _regions(annotation, text, path, line), line, repairs, vertical_of)
