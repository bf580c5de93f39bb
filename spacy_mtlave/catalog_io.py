"""Catalog files in and out for both ``extract`` engines (local and Ray): the input format of a path, Parquet rows as
input records, and output records written as JSONL or Parquet with one schema.

Parquet output columns (one row per input record, the JSONL record's fields; a field the record lacks is null):

- ``id`` (string): a string id as given, any other id as its JSON text (``12``, ``["a", 1]``; a number JSON cannot
  hold, such as ``1e999``, as its spelling, as in JSONL output); lone surrogates
  (from JSON escapes like ``"\\ud800"``) become U+FFFD, since Parquet strings are UTF-8;
- ``attributes`` (map label -> list of struct ``value`` string, ``start``, ``end`` int64, ``confidence`` double);
- ``line`` (int64) and ``error`` (string): set on error records only;
- with the Ray engine also ``file`` (string) and ``row`` (int64, 1-based): where the record comes from.
"""
import json
from pathlib import Path
from typing import IO, Any, Dict, Iterator, List, Optional, Tuple

from .extract import dumps_record
from .json_input import LONE_SURROGATE, RawNumber, raw_number_as_string

PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson", ".jl")
FORMATS = ("jsonl", "parquet")


def input_format(path: Any) -> str:
    """"parquet" for a ``.parquet``/``.pq`` file, else "jsonl"."""
    return "parquet" if str(path).lower().endswith(PARQUET_SUFFIXES) else "jsonl"


def output_format(path: Any, fmt: Optional[str] = None) -> str:
    """``fmt`` when given (ValueError unless jsonl or parquet), else from the output's suffix (default jsonl)."""
    if fmt is None:
        return input_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"--format must be jsonl or parquet, got {fmt!r}")
    return fmt


def output_schema(with_source: bool = False):
    """The pyarrow schema of Parquet output (see the module docstring)."""
    import pyarrow as pa

    attribute = pa.struct([("value", pa.string()), ("start", pa.int64()), ("end", pa.int64()), ("confidence", pa.float64())])
    fields = [("id", pa.string()), ("attributes", pa.map_(pa.string(), pa.list_(attribute))), ("line", pa.int64()), ("error", pa.string())]
    if with_source:
        fields += [("file", pa.string()), ("row", pa.int64())]
    return pa.schema(fields)


def check_parquet_schema(schema, path: Any, text_field: str) -> None:
    """ValueError (one line, naming the file) when the text column is missing or does not hold strings."""
    import pyarrow as pa

    if text_field not in schema.names:
        shown = ", ".join(schema.names[:10]) + (", ..." if len(schema.names) > 10 else "")
        raise ValueError(f"{path}: no column {text_field!r} (columns: {shown}); choose it with --text-field")
    kind = schema.field(text_field).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise ValueError(f"{path}: column {text_field!r} holds {kind}, expected strings")


def open_parquet(path: Any, text_field: str, filesystem=None):
    """``pyarrow.parquet.ParquetFile`` of ``path`` with its text column checked; ValueError (one line) otherwise."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        source = filesystem.open_input_file(str(path)) if filesystem is not None else str(path)
        parquet = pq.ParquetFile(source)
    except FileNotFoundError:
        raise ValueError(f"{path}: input not found") from None
    except (OSError, pa.ArrowException) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: cannot read as Parquet ({reason})") from None
    check_parquet_schema(parquet.schema_arrow, path, text_field)
    return parquet


def parquet_rows(parquet, text_field: str, id_field: str, batch_size: int = 10_000, row_groups: Optional[List[int]] = None) -> Iterator[Dict[str, Any]]:
    """The input records of a Parquet file, in order: ``{text_field: ..., id_field: ...}`` (the id only when the file
    has that column), read column by column in batches."""
    columns = [text_field] + ([id_field] if id_field in parquet.schema_arrow.names and id_field != text_field else [])
    for batch in parquet.iter_batches(batch_size=batch_size, columns=columns, row_groups=row_groups):
        yield from batch.to_pylist()


def _id_text(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, RawNumber):  # as the JSONL output writes it: a string of its spelling
        return value.text
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, allow_nan=False, default=raw_number_as_string)
    return LONE_SURROGATE.sub("\ufffd", text) if not text.isascii() else text


def parquet_row(record: Dict[str, Any], line_no: int) -> Tuple[Dict[str, Any], bool, int]:
    """(Parquet row, is an error record, numbers written as strings) of one output record; the record is first
    checked by :func:`~spacy_mtlave.extract.dumps_record` (the JSONL writer's rule), so both formats turn the same
    records into error records."""
    line, is_error, numbers = dumps_record(record, line_no)
    source = {key: record[key] for key in ("file", "row") if key in record}
    if is_error and "error" not in record:
        record = json.loads(line)
    row = {
        "id": _id_text(record.get("id")),
        "attributes": None if "attributes" not in record else list(record["attributes"].items()),
        "line": record.get("line"),
        "error": record.get("error"),
    }
    row.update(source)
    return row, is_error, numbers


class ParquetRecordWriter:
    """Output records into one Parquet file (an open binary handle), in row groups of ``rows_per_group``."""

    def __init__(self, handle: IO[bytes], with_source: bool = False, rows_per_group: int = 10_000) -> None:
        import pyarrow.parquet as pq

        self.schema = output_schema(with_source)
        self.writer = pq.ParquetWriter(handle, self.schema)
        self.rows: List[Dict[str, Any]] = []
        self.rows_per_group = rows_per_group

    def write(self, record: Dict[str, Any], line_no: int) -> Tuple[bool, int]:
        """Buffer one record; (is an error record, numbers written as strings)."""
        row, is_error, numbers = parquet_row(record, line_no)
        self.rows.append(row)
        if len(self.rows) >= self.rows_per_group:
            self.flush()
        return is_error, numbers

    def flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


def read_output(path: Any) -> List[Dict[str, Any]]:
    """The records of an output file (JSONL or Parquet) as the JSONL engine writes them (null fields left out,
    ``attributes`` as a dict): for tests and for comparing runs."""
    path = Path(path)
    if input_format(path) == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    import pyarrow.parquet as pq

    records = []
    for row in pq.read_table(path).to_pylist():
        if row["error"] is None:
            record = {"id": row["id"], "attributes": dict(row["attributes"])}
        else:
            record = {"line": row["line"], "error": row["error"]}
        record.update((key, row[key]) for key in ("file", "row") if key in row)
        records.append(record)
    return records
