"""Issue 17: property-based fuzzing of ``extract``: its line parser on any bytes, and the command on files of any
lines with the trained fixture pipeline. Never a traceback, exit code 0, as many output lines as input lines, each
valid JSON for any reader (no NaN/Infinity), an error line carrying its own line number."""
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spacy_mtlave.extract as extract_module
from spacy_mtlave.extract import ExtractStats, load_model, parse_line

from ..helpers import (
    ODD_NUMBERS,
    any_line,
    assert_no_traceback,
    invoke,
    json_strings,
    json_values,
    messy,
    one_in,
    strict_json,
)

BOM = b"\xef\xbb\xbf"


@st.composite
def record_lines(draw) -> str:
    """A product line: an id of any kind (odd numbers too), a text, other fields; now and then messed up."""
    ident = draw(st.sampled_from(['"sku-1"', "7", "null", "2.5"] + ODD_NUMBERS) | json_values(depth=1))
    return draw(messy([("id", ident), ("input", draw(json_strings())), ("extra", draw(json_values(depth=1)))], odd=8))


@st.composite
def input_lines(draw) -> bytes:
    """One line of a JSONL catalog (no line break inside): mostly product records, else anything, maybe a BOM."""
    text = draw(record_lines()) if draw(st.booleans()) else draw(any_line())
    return (BOM if draw(one_in(8)) else b"") + text.encode("utf-8", "surrogateescape")


def check_record(record, line_no: int) -> None:
    assert set(record) in ({"line", "error"}, {"id", "attributes"}), record
    if "error" in record:
        assert record["line"] == line_no and isinstance(record["error"], str) and "\n" not in record["error"]


@settings(max_examples=1000, deadline=None, database=None)
@given(raw=input_lines(), line_no=st.integers(1, 3), max_length=st.sampled_from([5, 1_000_000]))
def test_the_line_parser_takes_any_line(raw, line_no, max_length):
    text, record = parse_line(raw, line_no, "input", "id", max_length)
    assert isinstance(text, str) and len(text) <= max_length
    text.encode("utf-8")  # no lone surrogate reaches spaCy
    assert text == "" or "attributes" in record
    written = ExtractStats(lines=line_no - 1).dumps(record)
    assert written.endswith("\n") and written.count("\n") == 1
    check_record(strict_json(written), line_no)


@pytest.fixture(scope="module")
def cached_model(trained_single):
    return load_model(trained_single)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(input_lines(), min_size=1, max_size=8), final_newline=st.booleans(), n_process=st.sampled_from([1, 1, 1, 1, 2]))
def test_extract_writes_one_valid_line_per_input_line(cached_model, monkeypatch, lines, final_newline, n_process):
    monkeypatch.setattr(extract_module, "load_model", lambda model: cached_model)
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        content = b"\n".join(lines) + (b"\n" if final_newline else b"")
        source.write_bytes(content)
        n_lines = content.count(b"\n") + (bool(content) and not content.endswith(b"\n"))  # what a line reader sees
        result = invoke("extract", "cached", source, target, "--batch-size", 3, "--n-process", n_process)
        assert_no_traceback(result)
        assert result.exit_code == 0, result.output
        out = target.read_text(encoding="utf-8").splitlines()
        assert len(out) == n_lines  # lines out = lines in
        for n, line in enumerate(out, start=1):
            check_record(strict_json(line), n)
        n_errors = sum("error" in strict_json(line) for line in out)
        assert result.stderr.strip().splitlines()[-1].startswith(f"{n_lines} lines, {n_lines - n_errors} records, {n_errors} errors")
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["in.jsonl", "out.jsonl"]
