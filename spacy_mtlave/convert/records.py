"""What every format reader yields, and the shared reading helpers (UTF-8, JSONL, CSV, fields, verticals)."""
import csv
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from spacy.tokens import Doc

from .errors import ConvertError

# Outcome statuses of one gold value (or one specification entry).
PLACED = "placed"  # its span is in doc.ents with exactly the value's text
EXPANDED = "expanded"  # in doc.ents, but widened/narrowed to reference token boundaries
NOT_PLACED = "not_placed"  # not found (where it was allowed to be), or covers no token
OVERLAP_DROPPED = "overlap_dropped"  # it collides with a span placed before it (see placement.py)
ENTRY_SKIPPED = "entry_skipped"  # a specification entry without a key, or with a placeholder value ("NA")
STATUSES = (PLACED, EXPANDED, NOT_PLACED, OVERLAP_DROPPED, ENTRY_SKIPPED)


@dataclass
class Outcome:
    """What became of one gold value of the record on ``line``."""

    line: int
    label: Optional[str]
    value: str
    status: str
    detail: str = ""


@dataclass
class Record:
    """One converted example (``doc`` set) or one skipped input record (``skip`` says why)."""

    line: int
    vertical: Optional[str]
    doc: Optional[Doc] = None
    outcomes: List[Outcome] = field(default_factory=list)
    skip: Optional[str] = None


def read_text(path: Path) -> str:
    """The file decoded as strict UTF-8 (a leading BOM is dropped); empty files are an error."""
    if not path.is_file():
        raise ConvertError("no such file", path)
    data = path.read_bytes()
    if not data.strip():
        raise ConvertError("empty file", path, 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConvertError(f"not UTF-8: byte 0x{data[err.start]:02x} cannot be decoded", path, line) from None
    return text[1:] if text.startswith("\ufeff") else text


def iter_lines(path: Path) -> Iterator[Tuple[int, str]]:
    """(1-based line number, line without its line break), blank lines included."""
    for i, line in enumerate(read_text(path).split("\n"), start=1):
        yield i, line.rstrip("\r")


def iter_jsonl(path: Path) -> Iterator[Tuple[int, Dict[str, Any]]]:
    """(line number, object) for every non-blank line; anything but a JSON object is an error."""
    for i, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConvertError(f"malformed JSON: {err.msg} (column {err.colno})", path, i) from None
        if not isinstance(obj, dict):
            raise ConvertError(f"expected a JSON object, got {type(obj).__name__}", path, i)
        yield i, obj


def iter_csv(path: Path) -> Iterator[Tuple[int, Dict[str, str]]]:
    """(line number where the row starts, row) for every CSV row after the header."""
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    try:
        header = next(reader)
        start = reader.line_num + 1
        for row in reader:
            if len(row) != len(header) and any(row):
                raise ConvertError(f"row has {len(row)} cells, the header has {len(header)}", path, start)
            yield start, dict(zip(header, row))
            start = reader.line_num + 1
    except csv.Error as err:
        raise ConvertError(f"malformed CSV: {err}", path, reader.line_num) from None


def get_field(obj: Dict[str, Any], name: str, path: Path, line: int) -> Any:
    """``obj[name]``; a missing field is an error."""
    if name not in obj:
        raise ConvertError("missing required field", path, line, name)
    return obj[name]


def get_text(obj: Dict[str, Any], names: Sequence[str], path: Path, line: int) -> Tuple[str, List[Tuple[int, int]]]:
    """The text fields joined by "\\n", and each field's (start, end) character range in the result."""
    parts: List[str] = []
    ranges: List[Tuple[int, int]] = []
    start = 0
    for name in names:
        value = get_field(obj, name, path, line)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ConvertError(f"expected a string, got {type(value).__name__}", path, line, name)
        parts.append(value)
        ranges.append((start, start + len(value)))
        start += len(value) + 1
    return "\n".join(parts), ranges


def get_vertical(
    obj: Dict[str, Any],
    vertical_field: str,
    vertical: Optional[str],
    category_depth: Optional[int],
    path: Path,
    line: int,
) -> Tuple[Optional[str], Optional[str]]:
    """(vertical name, None), or (None, reason to skip the record).

    A fixed ``vertical`` wins. With ``category_depth`` the field is a category path such as
    ``'["Clothing >> Women's Clothing >> Shorts"]'`` (a JSON list of paths or one path; the first
    path is used) and the vertical is its first ``category_depth`` levels joined by " >> ".
    """
    if vertical is not None:
        return vertical, None
    value = get_field(obj, vertical_field, path, line)
    if category_depth is not None:
        value = _category_prefix(value, category_depth, vertical_field, path, line)
        if value is None:
            return None, f"category path shorter than --category-depth {category_depth}"
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "empty vertical"
    if not isinstance(value, str):
        raise ConvertError(f"expected a string, got {type(value).__name__}", path, line, vertical_field)
    return value.strip(), None


def _category_prefix(value: Any, depth: int, name: str, path: Path, line: int) -> Optional[str]:
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ConvertError(f"malformed category path: {err.msg}", path, line, name) from None
    if isinstance(value, list):
        value = value[0] if value else ""
    if not isinstance(value, str):
        raise ConvertError(f"expected a category path string, got {type(value).__name__}", path, line, name)
    levels = [level.strip() for level in value.split(">>") if level.strip()]
    if len(levels) < depth:
        return None
    return " >> ".join(levels[:depth])
