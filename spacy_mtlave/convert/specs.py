"""``specs`` (distant supervision): CSV or JSONL rows with text fields and a key/value specification.

The specification field may be a list of ``{"key", "value"}`` entries, an object mapping keys to
values, either of these wrapped in a one-key object (Flipkart: ``{"product_specification": [...]}``;
a one-key object is a wrapper only when its value is a list of such entries or one object with a
"key"), or such JSON in a string, where ``=>`` is read as ``:`` (Flipkart's Ruby-hash strings).
A value may be a list (several values: ``{"Color": ["Red", "Blue"]}``) or an object holding its
"value" (``{"Color": {"value": "Red"}}``); a key given twice gives both values (``json_input``).
Entries without a key, placeholder values ("NA", "N/A": absent, as "n/a" in attribute-values) and
values that are not text (an object without "value") are counted (``entry_skipped``), not tagged.

Keys become labels: whitespace stripped and collapsed; spellings that differ only in case form one
label, written as its most frequent spelling in the file (ties: the spelling seen first).
Values are tagged by ``placement.place_all_occurrences`` (case-insensitive, token-aligned, longer
first, every occurrence). Rows whose cells are all empty, rows without specification entries and
rows whose text is longer than spaCy's max_length are skipped and counted.
"""
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy.language import Language

from ..json_input import RawNumber, Repair, type_name
from ..label_coverage import mark_partial
from .errors import ConvertError
from .placement import Value, make_doc, place_all_occurrences, set_gold
from .records import (
    ENTRY_SKIPPED,
    Outcome,
    Record,
    get_field,
    get_text,
    get_vertical,
    iter_csv,
    iter_jsonl,
    load_json,
    skip_long_text,
)

Entry = Tuple[Optional[str], Optional[str]]  # (key or None, value; None: a value that is not text)
PLACEHOLDERS = ("na", "n/a")


@dataclass
class _Row:
    line: int
    vertical: Optional[str]
    skip: Optional[str]
    text: str = ""
    entries: Sequence[Entry] = ()
    repairs: Sequence[Repair] = ()


def read_specs(
    path: Path,
    nlp: Language,
    text_fields: Sequence[str] = ("product_name", "description"),
    spec_field: str = "product_specifications",
    vertical_field: str = "category",
    vertical: Optional[str] = None,
    category_depth: Optional[int] = None,
) -> Tuple[List[Record], Dict[str, Dict[str, int]]]:
    """The records, and for every label the key spellings it stands for (with their counts)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = iter_csv(path)
    elif suffix in (".jsonl", ".ndjson"):
        rows = iter_jsonl(path)
    else:
        raise ConvertError(f"the specs format reads .csv or .jsonl files, not {suffix or 'no extension'!r}", path)
    parsed: List[_Row] = []
    spellings: Counter = Counter()
    for line, row, repairs in rows:
        if all(value in (None, "") for value in row.values()):
            parsed.append(_Row(line, None, "empty row", repairs=repairs))
            continue
        text, _ = get_text(row, text_fields, path, line)
        entries = parse_specification(get_field(row, spec_field, path, line), path, line, spec_field, repairs)
        name, skip = get_vertical(row, vertical_field, vertical, category_depth, path, line)
        if name is not None and not entries:
            skip = "empty specification"
        if name is not None and skip is None:
            skip = skip_long_text(text, nlp.max_length)
        parsed.append(_Row(line, name, skip, text, entries, repairs))
        if skip is None:
            spellings.update(_normalize(key) for key, _ in entries if _normalize(key))
    labels = _labels(spellings)
    records = [_record(row, labels, nlp) for row in parsed]
    table: Dict[str, Dict[str, int]] = {}
    for spelling, count in spellings.items():
        table.setdefault(labels[spelling.casefold()], {})[spelling] = count
    return records, {label: dict(sorted(table[label].items())) for label in sorted(table)}


def parse_specification(raw: Any, path: Path, line: int, name: str, repairs: Optional[List[Repair]] = None) -> List[Entry]:
    """(key or None, value) entries of one specification field (see the module docstring); what was repaired in a
    specification string's JSON is added to ``repairs``."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return []
    if isinstance(raw, str):
        raw, fixed = load_json(raw.replace("=>", ":"), path, line, name, "specification")
        (repairs if repairs is not None else []).extend(fixed)
    if isinstance(raw, dict) and len(raw) == 1:
        inner = next(iter(raw.values()))
        if (isinstance(inner, list) and inner and all(map(_is_entry, inner))) or (isinstance(inner, dict) and "key" in inner):
            raw = inner
    if isinstance(raw, dict) and _is_entry(raw) and set(raw) <= {"key", "value"}:
        raw = [raw]
    entries: List[Entry] = []
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = []
        for entry in raw:
            if not isinstance(entry, dict):
                raise ConvertError(f"expected {{'key', 'value'}} entries, got {entry!r}", path, line, name)
            key = entry.get("key")
            items.append((key if isinstance(key, str) else None, entry.get("value")))
    else:
        raise ConvertError(f"expected a list or an object, got {type_name(raw)}", path, line, name)
    for key, value in items:
        entries.extend((key, one) for one in _texts(value))
    return entries


def _is_entry(value: Any) -> bool:
    return isinstance(value, dict) and ("key" in value or "value" in value)


def _texts(value: Any) -> List[Optional[str]]:
    """The values of one entry: a list gives each of its items, an object its "value"; None (JSON null) is "",
    something that is not text (an object without "value") is None."""
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    if isinstance(value, dict):
        return _texts(value["value"]) if "value" in value else [None]
    if value is None:
        return [""]
    return [value.text if isinstance(value, RawNumber) else str(value)]


def _normalize(key: Optional[str]) -> str:
    return " ".join(key.split()) if key else ""


def _labels(spellings: Counter) -> Dict[str, str]:
    """casefolded key -> label: its most frequent spelling; ``Counter`` keeps first-seen order for ties."""
    labels: Dict[str, str] = {}
    for spelling, _ in sorted(spellings.items(), key=lambda item: -item[1]):
        labels.setdefault(spelling.casefold(), spelling)
    return labels


def _record(row: _Row, labels: Dict[str, str], nlp: Language) -> Record:
    if row.skip is not None or row.vertical is None:
        return Record(row.line, row.vertical, skip=row.skip, repairs=list(row.repairs))
    values: List[Value] = []
    outcomes: List[Outcome] = []
    for key, value in row.entries:
        key = _normalize(key)
        if not key:
            outcomes.append(Outcome(row.line, None, value or "", ENTRY_SKIPPED, "specification entry without a key"))
        elif value is None:
            outcomes.append(Outcome(row.line, labels[key.casefold()], "", ENTRY_SKIPPED, "value is not text (an object without 'value')"))
        elif value.strip().casefold() in PLACEHOLDERS:
            outcomes.append(Outcome(row.line, labels[key.casefold()], value, ENTRY_SKIPPED, "placeholder value"))
        else:
            values.append((labels[key.casefold()], value, row.line, None))
    doc = make_doc(nlp, row.text, row.vertical)
    spans, placed = place_all_occurrences(doc, values)
    set_gold(doc, spans)
    # a specification lists some of a product's attributes: the text may hold values it left out (issue 16)
    mark_partial(doc, {labels[_normalize(key).casefold()] for key, _ in row.entries if _normalize(key)})
    return Record(row.line, row.vertical, doc, placed + outcomes, repairs=list(row.repairs))
