"""Extract attribute values from a JSONL (or Parquet) catalog with a trained pipeline, streaming, one output line per
input line (or row). :func:`check_record`, :func:`annotate` and :func:`dumps_record` are the record rules of both
engines: this one and ``extract --engine ray`` (:mod:`spacy_mtlave.extract_ray`); Parquet I/O is in
:mod:`spacy_mtlave.catalog_io`.

Output lines: ``{"id": ..., "attributes": {label: [{"value", "start", "end", "confidence"}]}}`` (``start``/``end``:
character offsets into the text), or ``{"line": n, "error": "..."}`` (1-based) for a line that is not valid UTF-8,
not JSON (or nested too deeply), not a JSON object, longer than the model's ``max_length``, whose text field is
missing, not a string or empty, or whose text or id field is given twice with different values. A whitespace-only
text is not an error: it gives a record with no attributes (it is not run through the model). Lone surrogates in a
text (JSON escapes like ``"\\ud800"`` without their pair) are read as U+FFFD, keeping the offsets. A UTF-8 BOM at the
start of line 1 is ignored. The JSON is read by :mod:`spacy_mtlave.json_input`: an id that is a number JSON readers
cannot take back (``NaN``, ``Infinity``, ``1e999``, an integer of more than 4,300 digits) is written as a string of
its spelling and counted; every output line is valid JSON (no NaN/Infinity).

The output is written to a temporary file next to it and moved into place at the end (:mod:`spacy_mtlave.outputs`):
a failure or Ctrl-C leaves the lines written so far in ``OUTPUT.partial``, never a complete-looking OUTPUT; the
output may not be the input (also through a link).
"""
import json
import multiprocessing
import sys
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import (
    IO,
    Any,
    Deque,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    Union,
)

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from .json_input import (
    LONE_SURROGATE,
    UTF8_BOM,
    DuplicateValues,
    JSONInputError,
    parse_json,
    raw_number_as_string,
    type_name,
)
from .outputs import check_output_file, partial_path, replaced_on_success


def load_model(model: Union[str, Path]) -> Language:
    """``spacy.load`` of a pipeline directory or an installed package name; ValueError with a one-line reason."""
    try:
        return spacy.load(model)
    except (OSError, ValueError, KeyError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"cannot load model {str(model)!r}: {reason}") from None


def parse_line(raw: bytes, line_no: int, text_field: str, id_field: str, max_length: int) -> Tuple[str, Dict[str, Any]]:
    """One input line -> (text for the model, output record to fill). Error lines and whitespace-only texts give
    the empty text "" (an empty doc passes through ``nlp.pipe`` at no cost and keeps the order)."""
    if line_no == 1 and raw.startswith(UTF8_BOM):
        raw = raw[len(UTF8_BOM):]
    try:
        record, _ = parse_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return "", {"line": line_no, "error": "not valid UTF-8"}
    except JSONInputError as err:
        where = "" if err.pos is None else f" at character {err.pos}"
        return "", {"line": line_no, "error": f"invalid JSON: {err.problem}{where}"}
    if not isinstance(record, dict):
        return "", {"line": line_no, "error": f"not a JSON object (got {type_name(record)})"}
    return check_record(record, line_no, text_field, id_field, max_length)


def check_record(record: Dict[str, Any], line_no: int, text_field: str, id_field: str, max_length: int) -> Tuple[str, Dict[str, Any]]:
    """One input record (a parsed JSON line or a Parquet row) -> (text for the model, output record to fill): the
    one rule both engines (``extract`` and ``extract --engine ray``) and both input formats use. ``line_no``: the
    1-based line or row, named by error records."""
    if text_field not in record:
        return "", {"line": line_no, "error": f"no {text_field!r} field"}
    text = record[text_field]
    for name, value in ((text_field, text), (id_field, record.get(id_field))):
        if isinstance(value, DuplicateValues):
            return "", {"line": line_no, "error": f"field {name!r} is given twice with different values"}
    if not isinstance(text, str):
        return "", {"line": line_no, "error": f"field {text_field!r} is not a string (got {type_name(text)})"}
    if not text:
        return "", {"line": line_no, "error": f"field {text_field!r} is empty"}
    if len(text) > max_length:
        return "", {"line": line_no, "error": f"field {text_field!r} has {len(text)} characters, more than max_length {max_length}"}
    if not text.isascii():
        text = LONE_SURROGATE.sub("\ufffd", text)  # spaCy cannot encode them; one for one keeps the offsets
    return (text if text.strip() else ""), {"id": record.get(id_field), "attributes": {}}


def doc_attributes(doc: Doc) -> Dict[str, List[Dict[str, Any]]]:
    """``doc.ents`` grouped by label: [{"value", "start", "end", "confidence"}] in text order (character offsets;
    confidence: ``span._.confidence`` rounded to 4 digits, None if the pipeline sets none)."""
    attributes: Dict[str, List[Dict[str, Any]]] = {}
    for ent in doc.ents:
        confidence = ent._.confidence
        attributes.setdefault(ent.label_, []).append({
            "value": ent.text,
            "start": ent.start_char,
            "end": ent.end_char,
            "confidence": None if confidence is None else round(float(confidence), 4),
        })
    return attributes


def extract_lines(
    nlp: Language,
    lines: Iterable[bytes],
    text_field: str = "input",
    id_field: str = "id",
    batch_size: Optional[int] = None,
    n_process: int = 1,
    max_length: Optional[int] = None,
) -> Iterator[Dict[str, Any]]:
    """One output record per input line, in order, lazily. ``max_length``: longer texts are error records
    (default: ``nlp.max_length``). ``n_process > 1``: see :func:`annotate_parallel`."""
    apply_settings(nlp, batch_size, n_process, max_length)
    parsed = (parse_line(raw, n, text_field, id_field, nlp.max_length) for n, raw in enumerate(lines, start=1))
    return annotate_in(nlp, parsed, batch_size, n_process)


def extract_rows(
    nlp: Language,
    rows: Iterable[Dict[str, Any]],
    text_field: str = "input",
    id_field: str = "id",
    batch_size: Optional[int] = None,
    n_process: int = 1,
    max_length: Optional[int] = None,
) -> Iterator[Dict[str, Any]]:
    """:func:`extract_lines` for records already read (Parquet rows): one output record per row, in order."""
    apply_settings(nlp, batch_size, n_process, max_length)
    parsed = (check_record(row, n, text_field, id_field, nlp.max_length) for n, row in enumerate(rows, start=1))
    return annotate_in(nlp, parsed, batch_size, n_process)


def annotate_in(nlp: Language, parsed: Iterable[Tuple[str, Dict[str, Any]]], batch_size: Optional[int], n_process: int) -> Iterator[Dict[str, Any]]:
    """:func:`annotate` in this process, or :func:`annotate_parallel` for ``n_process > 1``."""
    if n_process > 1:
        return annotate_parallel(nlp, parsed, batch_size or nlp.batch_size, n_process)
    return annotate(nlp, parsed, batch_size)


def annotate(nlp: Language, parsed: Iterable[Tuple[str, Dict[str, Any]]], batch_size: Optional[int] = None) -> Iterator[Dict[str, Any]]:
    """(text, record) pairs -> the records, attributes filled in (``nlp.pipe`` with ``as_tuples``)."""
    for doc, record in nlp.pipe(parsed, as_tuples=True, batch_size=batch_size):
        if "attributes" in record:
            record["attributes"] = doc_attributes(doc)
        yield record


def annotate_parallel(nlp: Language, parsed: Iterable[Tuple[str, Dict[str, Any]]], batch_size: int, n_process: int) -> Iterator[Dict[str, Any]]:
    """:func:`annotate` in ``n_process`` worker processes, chunks of ``batch_size`` pairs, at most two chunks per
    worker in flight (streaming), results in input order.

    Not ``nlp.pipe(n_process=...)``: that sends every Doc back through ``Doc.to_bytes``, which cost more than the
    tagging (2,000 lines/s in one process, 80 lines/s with ``nlp.pipe(n_process=2)``); the workers here return the
    small output records.
    """
    pairs = iter(parsed)
    with multiprocessing.get_context().Pool(n_process, _init_worker, (nlp,)) as pool:
        pending: Deque = deque()
        for chunk in iter(lambda: list(islice(pairs, batch_size)), []):
            pending.append(pool.apply_async(_annotate_chunk, (chunk,)))
            if len(pending) > 2 * n_process:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()


_worker_nlp: Optional[Language] = None


def _init_worker(nlp: Language) -> None:
    global _worker_nlp
    import torch

    torch.set_num_threads(1)
    _worker_nlp = nlp


def _annotate_chunk(chunk: List[Tuple[str, Dict[str, Any]]]) -> List[Dict[str, Any]]:
    return list(annotate(_worker_nlp, chunk, len(chunk)))


def check_settings(batch_size: Optional[int], n_process: int, max_length: Optional[int]) -> None:
    """ValueError (one line) for a batch size, process count or max_length below 1."""
    for option, value in (("--batch-size", batch_size), ("--n-process", n_process), ("--max-length", max_length)):
        if value is not None and value < 1:
            raise ValueError(f"{option} must be at least 1, got {value}")


def apply_settings(nlp: Language, batch_size: Optional[int], n_process: int, max_length: Optional[int]) -> None:
    """Check the settings (``check_settings``) and give the pipeline ``max_length`` when set."""
    check_settings(batch_size, n_process, max_length)
    if max_length is not None:
        nlp.max_length = max_length


@dataclass
class ExtractStats:
    lines: int = 0
    records: int = 0
    errors: int = 0
    seconds: float = 0.0
    numbers_as_strings: int = 0  # ids holding NaN, Infinity, 1e999 or a too long integer, written as strings

    def summary(self) -> str:
        rate = self.lines / self.seconds if self.seconds > 0 else 0.0
        line = f"{self.lines} lines, {self.records} records, {self.errors} errors, {rate:.1f} lines/s"
        if self.numbers_as_strings:
            line += f"; {self.numbers_as_strings} id numbers that JSON cannot hold written as strings"
        return line

    def dumps(self, record: Dict[str, Any]) -> str:
        """One output line (:func:`dumps_record`), counted; an error line names this line's number."""
        line, is_error, numbers = dumps_record(record, self.lines + 1)
        self.count(is_error, numbers)
        return line + "\n"

    def count(self, is_error: bool, numbers: int) -> None:
        """One more output record."""
        self.lines += 1
        self.errors += is_error
        self.numbers_as_strings += numbers


# characters that str.splitlines() and many JSONL readers take as line breaks but json.dumps(ensure_ascii=False)
# leaves raw inside strings: escaped, so one record stays one line
LINE_SEPARATORS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def dumps_record(record: Dict[str, Any], line_no: int) -> Tuple[str, bool, int]:
    """(JSON text, is an error record, numbers written as strings) of one output record: strict JSON (no NaN), a
    :class:`~spacy_mtlave.json_input.RawNumber` written as a string of its spelling; an id that cannot be written
    (nested too deeply) makes it the error record ``{"line": line_no, "error": ...}``."""
    numbers = 0

    def as_string(value: Any) -> str:
        nonlocal numbers
        numbers += 1
        return raw_number_as_string(value)

    try:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False, default=as_string)
    except (RecursionError, ValueError, TypeError) as err:
        problem = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        record, numbers = {"line": line_no, "error": f"field id cannot be written as JSON: {problem}"}, 0
        line = json.dumps(record, ensure_ascii=False)
    return line.translate(LINE_SEPARATORS), "error" in record, numbers


def open_input(path: Path) -> IO[bytes]:
    """The input opened for binary reading; ValueError naming the file when it cannot be opened."""
    try:
        return Path(path).open("rb")
    except OSError as err:
        raise ValueError(f"{path}: cannot open input ({err.strerror or err})") from None


def extract_file(
    model: Union[str, Path, Language],
    input_path: Path,
    output_path: Path,
    text_field: str = "input",
    id_field: str = "id",
    batch_size: Optional[int] = None,
    n_process: int = 1,
    max_length: Optional[int] = None,
    progress: Optional[bool] = None,
    output_format: Optional[str] = None,
) -> ExtractStats:
    """Stream ``input_path`` (JSONL, or Parquet for a ``.parquet``/``.pq`` file) through the model into
    ``output_path`` (one record per input line or row, in order; JSONL, or Parquet when ``output_format`` is
    "parquet" or the output ends in ``.parquet``; :mod:`spacy_mtlave.catalog_io` has the Parquet schema).

    ValueError (one line) when the settings are out of range, the output cannot be written (checked first: its
    folder exists, it is not a folder, it is not the input), the input or the model cannot be opened, or a Parquet
    input has no string text column; bad input lines are error records, counted in the returned stats. The output is
    written to a temporary file in its folder and moved into place at the end; on a failure or Ctrl-C the JSONL lines
    written so far are left in ``OUTPUT.partial`` (a Parquet output is removed: a file cut short is unreadable).
    ``progress``: a tqdm bar (bytes or rows read, lines/s) on stderr; None: only when stderr is a terminal. Sets torch
    to one thread: scale with ``n_process`` (2 threads on 2 busy cores were 10x slower than 1).
    """
    import torch
    from tqdm import tqdm

    from . import catalog_io

    check_settings(batch_size, n_process, max_length)
    fmt = catalog_io.output_format(output_path, output_format)
    target = check_output_file(output_path, inputs=[input_path])
    parquet = catalog_io.input_format(input_path) == "parquet"
    with (nullcontext(None) if parquet else open_input(input_path)) as source:
        table = catalog_io.open_parquet(input_path, text_field) if parquet else None
        nlp = model if isinstance(model, Language) else load_model(model)
        torch.set_num_threads(1)  # the small LSTM ops gain nothing from more threads; workers set their own
        if parquet:
            total, unit = table.metadata.num_rows, "rows"
        else:
            total, unit = (Path(input_path).stat().st_size if Path(input_path).is_file() else None), "B"
        bar = tqdm(total=total, unit=unit, unit_scale=True, unit_divisor=1024 if unit == "B" else 1000, desc="extract",
                   file=sys.stderr, disable=None if progress is None else not progress)
        stats, start = ExtractStats(), time.perf_counter()

        def read(lines: Iterable[Any]) -> Iterator[Any]:
            for line in lines:
                bar.update(1 if parquet else len(line))
                yield line

        if parquet:
            rows = catalog_io.parquet_rows(table, text_field, id_field)
            records = extract_rows(nlp, read(rows), text_field, id_field, batch_size, n_process, max_length)
        else:
            records = extract_lines(nlp, read(source), text_field, id_field, batch_size, n_process, max_length)
        try:
            with replaced_on_success(target, binary=fmt == "parquet", errors="backslashreplace", keep_partial=fmt == "jsonl") as sink, bar:
                writer = catalog_io.ParquetRecordWriter(sink) if fmt == "parquet" else None
                for record in records:
                    if writer is not None:
                        stats.count(*writer.write(record, stats.lines + 1))
                    else:
                        sink.write(stats.dumps(record))
                    if stats.lines % 1000 == 0:
                        bar.set_postfix_str(f"{stats.lines / (time.perf_counter() - start):.0f} lines/s", refresh=False)
                if writer is not None:
                    writer.close()
        except OSError as err:
            kept = f"; lines written so far: {partial_path(target)}" if fmt == "jsonl" else ""
            raise ValueError(f"{output_path}: cannot write ({err.strerror or err}){kept}") from None
    stats.records = stats.lines - stats.errors
    stats.seconds = time.perf_counter() - start
    return stats
