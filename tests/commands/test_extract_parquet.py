"""``extract`` (local engine) with Parquet in and out: the same records as from the same catalog in JSONL."""
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spacy_mtlave.catalog_io import output_schema, read_output
from spacy_mtlave.extract import extract_file

from ..helpers import assert_one_line_error, invoke

TITLES = ["Acme dark coffee , 12 oz", "Tazo red tea , 20 count", "Lavazza herbal espresso , 1 lb", " ", ""]


def catalog(n: int):
    """Rows of a catalog with good, blank, empty and missing (null) texts."""
    return [{"id": f"sku-{i}", "input": None if i % 7 == 6 else TITLES[i % len(TITLES)]} for i in range(n)]


def write_both(tmp_path, rows, row_group_size=16):
    jsonl, parquet = tmp_path / "in.jsonl", tmp_path / "in.parquet"
    jsonl.write_text("".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n" for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), parquet, row_group_size=row_group_size)
    return jsonl, parquet


def test_parquet_input_gives_the_records_of_the_same_jsonl(trained_single, tmp_path):
    jsonl, parquet = write_both(tmp_path, catalog(60))
    extract_file(trained_single, jsonl, tmp_path / "from_jsonl.jsonl", batch_size=8, progress=False)
    stats = extract_file(trained_single, parquet, tmp_path / "from_parquet.jsonl", batch_size=8, progress=False)
    from_jsonl, from_parquet = read_output(tmp_path / "from_jsonl.jsonl"), read_output(tmp_path / "from_parquet.jsonl")
    assert len(from_parquet) == 60 and stats.lines == 60
    for a, b in zip(from_jsonl, from_parquet):
        if "error" in a:  # a missing field in JSONL is a null column value in Parquet
            assert b["line"] == a["line"] and "error" in b
        else:
            assert a == b
    assert from_parquet[6]["error"] == "field 'input' is not a string (got NoneType)"
    assert from_parquet[4]["error"] == "field 'input' is empty"
    assert from_parquet[3] == {"id": "sku-3", "attributes": {}}  # whitespace only
    assert from_parquet[0]["attributes"]["Size"][0]["value"] == "12 oz"
    extract_file(trained_single, parquet, tmp_path / "two.jsonl", batch_size=8, n_process=2, progress=False)
    assert (tmp_path / "two.jsonl").read_text() == (tmp_path / "from_parquet.jsonl").read_text()


def test_parquet_output_has_the_schema_and_the_records(trained_single, tmp_path):
    jsonl, _ = write_both(tmp_path, catalog(40))
    with jsonl.open("a") as f:
        f.write('{"id": 1e999, "input": "Acme dark coffee"}\n{"id": [1, "a"], "input": "Tazo"}\nnot json\n')
    result = invoke("extract", trained_single, jsonl, tmp_path / "out.parquet", "--batch-size", "8")
    assert result.exit_code == 0, result.output
    assert "43 lines" in result.stderr and "1 id numbers that JSON cannot hold written as strings" in result.stderr
    assert pq.read_schema(tmp_path / "out.parquet") == output_schema()
    extract_file(trained_single, jsonl, tmp_path / "out.jsonl", batch_size=8, progress=False)
    as_jsonl, as_parquet = read_output(tmp_path / "out.jsonl"), read_output(tmp_path / "out.parquet")
    assert as_parquet[:40] == as_jsonl[:40]
    assert as_parquet[40]["id"] == "1e999" and as_parquet[41]["id"] == '[1, "a"]'  # non-string ids as JSON text
    assert as_parquet[42] == {"line": 43, "error": as_jsonl[42]["error"]}
    forced = invoke("extract", trained_single, jsonl, tmp_path / "out.data", "--format", "parquet")
    assert forced.exit_code == 0 and pq.read_table(tmp_path / "out.data").num_rows == 43


@pytest.mark.parametrize("case, message", [
    ("no text column", "no column 'input'"),
    ("text not strings", "column 'input' holds int64, expected strings"),
    ("not parquet", "cannot read as Parquet"),
    ("missing", "input not found"),
])
def test_bad_parquet_input_is_one_line_and_writes_nothing(trained_single, tmp_path, case, message):
    source, target = tmp_path / "in.parquet", tmp_path / "out.jsonl"
    if case == "no text column":
        pq.write_table(pa.table({"id": [1], "title": ["Acme"]}), source)
    elif case == "text not strings":
        pq.write_table(pa.table({"id": [1], "input": [5]}), source)
    elif case == "not parquet":
        source.write_text('{"id": 1, "input": "Acme"}\n')
    assert_one_line_error(invoke("extract", trained_single, source, target), str(source), message)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["in.parquet"] if case != "missing" else [])


def test_bad_format_engine_or_address_option(trained_single, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "input": "Acme"}\n')
    assert_one_line_error(invoke("extract", trained_single, source, tmp_path / "o", "--format", "csv"), "--format must be jsonl or parquet")
    assert_one_line_error(invoke("extract", trained_single, source, tmp_path / "o", "--engine", "spark"), "--engine must be local or ray")
    assert_one_line_error(invoke("extract", trained_single, source, tmp_path / "o", "--address", "auto"), "--address needs --engine ray")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
