"""What every format reader yields, and the shared reading helpers (UTF-8, JSONL, CSV, fields, verticals)."""
import csv
import io
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from spacy.tokens import Doc

from ..json_input import JSONInputError, Repair, merge_pairs, parse_json, type_name
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
    repairs: List[Repair] = field(default_factory=list)  # what was repaired in its input (json_input), counted


LINE_BREAK = re.compile(r"\r\n|\r|\n")  # CRLF, CR-only (old Mac) and LF files read alike


def skip_long_text(text: str, max_length: int) -> Optional[str]:
    """The skip reason of a record whose text is longer than spaCy's ``max_length`` (1,000,000 characters by default:
    the reference tokenizer refuses it, E088), or None."""
    return f"text over {max_length:,} characters (spaCy's max_length)" if len(text) > max_length else None


def read_text(path: Path) -> str:
    """The file decoded as strict UTF-8 (a leading BOM is dropped); empty files are an error."""
    if path.is_dir():
        raise ConvertError("is a folder, expected an input file", path)
    if not path.is_file():
        raise ConvertError("no such file", path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConvertError(f"cannot read ({err.strerror or err})", path) from None
    if not data.strip():
        raise ConvertError("empty file", path, 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = len(LINE_BREAK.findall(data[: err.start].decode("utf-8"))) + 1
        raise ConvertError(f"not UTF-8: byte 0x{data[err.start]:02x} cannot be decoded", path, line) from None
    return text[1:] if text.startswith("\ufeff") else text


def iter_lines(path: Path) -> Iterator[Tuple[int, str]]:
    """(1-based line number, line without its line break), blank lines included; a line ends at CRLF, CR or LF."""
    for i, line in enumerate(LINE_BREAK.split(read_text(path)), start=1):
        yield i, line


def load_json(text: str, path: Path, line: int, field: Optional[str] = None, what: str = "JSON") -> Tuple[Any, List[Repair]]:
    """``json_input.parse_json`` with lone surrogates repaired; ConvertError ("malformed <what>") naming the line (and
    field)."""
    try:
        return parse_json(text, repair_surrogates=True)
    except JSONInputError as err:
        where = "" if err.colno is None else f" (column {err.colno})"
        raise ConvertError(f"malformed {what}: {err.problem}{where}", path, line, field) from None


def iter_jsonl(path: Path) -> Iterator[Tuple[int, Dict[str, Any], List[Repair]]]:
    """(line number, object, repairs) for every non-blank line; anything but a JSON object is an error."""
    for i, line in iter_lines(path):
        if not line.strip():
            continue
        obj, repairs = load_json(line, path, i)
        if not isinstance(obj, dict):
            raise ConvertError(f"expected a JSON object, got {type_name(obj)}", path, i)
        yield i, obj, repairs


def iter_csv(path: Path) -> Iterator[Tuple[int, Dict[str, str], List[Repair]]]:
    """(line number where the row starts, row, repairs) for every CSV row after the header. Columns of the same name
    are merged by the JSON rule (``json_input``): equal cells kept once, different cells become a list."""
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    try:
        header = next(reader)
        start = reader.line_num + 1
        duplicated = len(set(header)) < len(header)
        for row in reader:
            if len(row) != len(header) and any(row):
                raise ConvertError(f"row has {len(row)} cells, the header has {len(header)}", path, start)
            repairs: List[Repair] = []
            yield start, (merge_pairs(zip(header, row), repairs) if duplicated else dict(zip(header, row))), repairs
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
            raise ConvertError(f"expected a string, got {type_name(value)}", path, line, name)
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
        raise ConvertError(f"expected a string, got {type_name(value)}", path, line, vertical_field)
    return value.strip(), None


def _category_prefix(value: Any, depth: int, name: str, path: Path, line: int) -> Optional[str]:
    if isinstance(value, str) and value.lstrip().startswith("["):
        value, _ = load_json(value, path, line, name, "category path")
    if isinstance(value, list):
        value = value[0] if value else ""
    if not isinstance(value, str):
        raise ConvertError(f"expected a category path string, got {type_name(value)}", path, line, name)
    levels = [level.strip() for level in value.split(">>") if level.strip()]
    if len(levels) < depth:
        return None
    return " >> ".join(levels[:depth])
