"""JSON input read by one rule in every command (``extract`` and the ``convert`` readers).

Python's ``json`` module crashes on some valid or near-valid input and silently loses some other input; here:

- numbers Python cannot hold as given (``NaN``, ``Infinity``, ``-Infinity``, a float that overflows like ``1e999``, an
  integer of more digits than ``sys.get_int_max_str_digits()``) are read as :class:`RawNumber`, which keeps their
  spelling (``extract`` writes them back as strings; a reader that needs a number reports a wrong type);
- nesting deeper than Python's recursion limit is a :class:`JSONInputError` ("nested too deeply"), not a RecursionError;
- duplicate keys in one object are merged, never silently dropped: equal values are kept once, two objects are merged
  key by key (by this same rule), two lists are concatenated, other different values become a :class:`DuplicateValues`
  list (a field that needs one value reports it as an error). Every duplicate key is reported as a repair;
- with ``repair_surrogates``, lone surrogates (JSON escapes like ``"\\ud800"`` without their pair, which spaCy cannot
  encode) become U+FFFD, one for one so character offsets stay valid, and are reported as repairs.
"""
import json
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # left by JSON escapes like "\\ud800" without their pair
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # the only way a lone surrogate gets into decoded JSON
UTF8_BOM = b"\xef\xbb\xbf"
DUPLICATE_KEY = "duplicate key merged"
SURROGATE_REPLACED = "lone surrogate replaced by U+FFFD"

Repair = Tuple[str, str]  # (kind, detail)


class RawNumber:
    """A JSON number Python cannot hold as written (NaN, Infinity, 1e999, a 5,000-digit integer): its spelling."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        if len(self.text) > 40:
            return f"<number of {len(self.text)} characters>"
        return self.text


class DuplicateValues(list):
    """The different values of one key given several times in one object (in input order)."""

    def __repr__(self) -> str:
        return "<duplicate keys with different values: " + ", ".join(map(repr, self)) + ">"


class JSONInputError(ValueError):
    """Input that is not JSON we can read: ``problem`` and, for a syntax error, the character position (0-based)
    and column (1-based) where it is."""

    def __init__(self, problem: str, pos: Optional[int] = None, colno: Optional[int] = None) -> None:
        super().__init__(problem)
        self.problem, self.pos, self.colno = problem, pos, colno


def type_name(value: Any) -> str:
    """The JSON-ish type of a parsed value, for messages ("str", "list", "number NaN", "duplicate keys ...")."""
    if isinstance(value, RawNumber):
        return f"number {value!r}"
    if isinstance(value, DuplicateValues):
        return "duplicate keys with different values"
    return type(value).__name__


def _number(text: str, convert) -> Any:
    try:
        value = convert(text)
    except ValueError:  # an integer longer than sys.get_int_max_str_digits()
        return RawNumber(text)
    return RawNumber(text) if value in (float("inf"), float("-inf")) else value


def _merge(old: Any, new: Any) -> Any:
    if old == new:
        return old
    if isinstance(old, DuplicateValues):
        return DuplicateValues([*old, new])
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for key, value in new.items():
            merged[key] = _merge(merged[key], value) if key in merged else value
        return merged
    if isinstance(old, list) and isinstance(new, list):
        return old + new
    return DuplicateValues([old, new])


def merge_pairs(items: Iterable[Tuple[str, Any]], repairs: List[Repair]) -> Dict[str, Any]:
    """(key, value) pairs -> a dict, duplicate keys merged (see the module docstring) and listed in ``repairs``; also
    used for CSV rows whose header repeats a column name."""
    obj: Dict[str, Any] = {}
    for key, value in items:
        if key in obj:
            repairs.append((DUPLICATE_KEY, repr(key)))
            obj[key] = _merge(obj[key], value)
        else:
            obj[key] = value
    return obj


def _decoder(repairs: List[Repair]) -> json.JSONDecoder:
    return json.JSONDecoder(
        object_pairs_hook=lambda items: merge_pairs(items, repairs),
        parse_int=lambda text: _number(text, int),
        parse_float=lambda text: _number(text, float),
        parse_constant=RawNumber,
    )


def _replace_surrogates(value: Any, repairs: List[Repair]) -> Any:
    if isinstance(value, str):
        fixed = LONE_SURROGATE.sub("\ufffd", value)
        if fixed != value:
            repairs.append((SURROGATE_REPLACED, repr(fixed[:40])))
        return fixed
    if isinstance(value, dict):
        return {_replace_surrogates(k, repairs): _replace_surrogates(v, repairs) for k, v in value.items()}
    if isinstance(value, list):
        return type(value)(_replace_surrogates(v, repairs) for v in value)
    return value


def parse_json(text: str, repair_surrogates: bool = False) -> Tuple[Any, List[Repair]]:
    """(value, repairs) of one JSON document (see the module docstring); JSONInputError with a one-line problem."""
    repairs: List[Repair] = []
    try:
        value = _decoder(repairs).decode(text)
        if repair_surrogates and SURROGATE_ESCAPE.search(text):
            value = _replace_surrogates(value, repairs)
    except json.JSONDecodeError as err:
        raise JSONInputError(err.msg, err.pos, err.colno) from None
    except RecursionError:
        raise JSONInputError("nested too deeply") from None
    return value, repairs


def raw_number_as_string(value: Any) -> str:
    """``json.dumps(default=...)``: a :class:`RawNumber` is written as a string of its spelling."""
    if isinstance(value, RawNumber):
        return value.text
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
