"""``mave`` JSONL, the public MAVE schema:
``{"id", "category", "paragraphs": [{"text", "source"}],
"attributes": [{"key", "evidences": [{"value", "pid", "begin", "end"}]}]}``.

The paragraphs are joined by "\\n" into one doc, evidence offsets shifted accordingly. Offsets are
checked (``text[begin:end] == value``). Lines with the same id (MAVE has one line per product and
attribute) are merged into one doc, at the position of the first; their paragraphs must agree.
Overlapping evidences are resolved by ``placement.resolve_overlaps``.
"""
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from spacy.language import Language

from ..json_input import RawNumber, Repair, type_name
from .errors import ConvertError
from .placement import CharSpan, make_doc, resolve_overlaps, set_gold
from .records import Record, get_field, get_vertical, iter_jsonl, skip_long_text


class _Product:
    def __init__(self, line: int, texts: List[str], vertical: Optional[str], skip: Optional[str]) -> None:
        self.line = line
        self.texts = texts
        self.vertical = vertical
        self.skip = skip
        self.offsets = [sum(len(t) + 1 for t in texts[:i]) for i in range(len(texts))]
        self.spans: List[CharSpan] = []
        self.repairs: List[Repair] = []


def read_mave(
    path: Path,
    nlp: Language,
    vertical_field: str = "category",
    vertical: Optional[str] = None,
    category_depth: Optional[int] = None,
) -> Iterator[Record]:
    products: Dict[str, _Product] = {}
    for line, obj, repairs in iter_jsonl(path):
        pid = get_field(obj, "id", path, line)
        if isinstance(pid, RawNumber):  # NaN, 1e999 or a too long integer: its spelling names the product
            pid = pid.text
        if not isinstance(pid, (str, int)) or isinstance(pid, bool):
            raise ConvertError(f"expected a string, got {type_name(pid)}", path, line, "id")
        texts = _paragraphs(get_field(obj, "paragraphs", path, line), path, line)
        name, skip = get_vertical(obj, vertical_field, vertical, category_depth, path, line)
        product = products.get(str(pid))
        if product is None:
            product = products[str(pid)] = _Product(line, texts, name, skip)
        elif texts != product.texts:
            raise ConvertError(f"differs from line {product.line} with the same id {pid!r}", path, line, "paragraphs")
        elif name != product.vertical:
            raise ConvertError(f"differs from line {product.line} with the same id {pid!r}", path, line, vertical_field)
        product.repairs += repairs
        _evidences(get_field(obj, "attributes", path, line), product, path, line)
    for product in products.values():
        text = "\n".join(product.texts)
        skip = product.skip if product.vertical is None else skip_long_text(text, nlp.max_length)
        if skip is not None:
            yield Record(product.line, product.vertical, skip=skip, repairs=product.repairs)
            continue
        doc = make_doc(nlp, text, product.vertical)
        spans, outcomes = resolve_overlaps(doc, product.spans)
        set_gold(doc, spans)
        yield Record(product.line, product.vertical, doc, outcomes, repairs=product.repairs)


def _paragraphs(paragraphs: Any, path: Path, line: int) -> List[str]:
    if not isinstance(paragraphs, list) or not paragraphs:
        raise ConvertError("expected a non-empty list of paragraphs", path, line, "paragraphs")
    texts = []
    for i, paragraph in enumerate(paragraphs):
        text = paragraph.get("text") if isinstance(paragraph, dict) else None
        if not isinstance(text, str):
            raise ConvertError("expected an object with a string 'text'", path, line, f"paragraphs[{i}]")
        texts.append(text)
    return texts


def _evidences(attributes: Any, product: _Product, path: Path, line: int) -> None:
    if not isinstance(attributes, list):
        raise ConvertError(f"expected a list, got {type_name(attributes)}", path, line, "attributes")
    for i, attribute in enumerate(attributes):
        where = f"attributes[{i}]"
        if not isinstance(attribute, dict):
            raise ConvertError(f"expected an object, got {type_name(attribute)}", path, line, where)
        key = attribute.get("key")
        if not isinstance(key, str) or not key.strip():
            raise ConvertError("missing or empty 'key'", path, line, f"{where}.key")
        evidences = attribute.get("evidences", [])
        if not isinstance(evidences, list):
            raise ConvertError("expected a list", path, line, f"{where}.evidences")
        for j, evidence in enumerate(evidences):
            product.spans.append(_evidence(evidence, key, product, path, line, f"{where}.evidences[{j}]"))


def _evidence(evidence: Any, key: str, product: _Product, path: Path, line: int, where: str) -> CharSpan:
    if not isinstance(evidence, dict):
        raise ConvertError(f"expected an object, got {type_name(evidence)}", path, line, where)
    for name in ("value", "pid", "begin", "end"):
        if name not in evidence:
            raise ConvertError("missing required field", path, line, f"{where}.{name}")
    value, pid, begin, end = (evidence[name] for name in ("value", "pid", "begin", "end"))
    if not isinstance(value, str):
        raise ConvertError("expected a string", path, line, f"{where}.value")
    for name, number in (("pid", pid), ("begin", begin), ("end", end)):
        if not isinstance(number, int) or isinstance(number, bool):
            raise ConvertError(f"expected an integer, got {number!r}", path, line, f"{where}.{name}")
    if not 0 <= pid < len(product.texts):
        raise ConvertError(f"pid {pid} out of range ({len(product.texts)} paragraphs)", path, line, f"{where}.pid")
    text = product.texts[pid]
    if not 0 <= begin < end <= len(text):
        problem = f"offsets [{begin}, {end}) out of range for a paragraph of {len(text)} characters"
        raise ConvertError(problem, path, line, where)
    if text[begin:end] != value:
        raise ConvertError(f"text[{begin}:{end}] is {text[begin:end]!r}, not the value {value!r}", path, line, where)
    shift = product.offsets[pid]
    return (begin + shift, end + shift, key, value, line)
