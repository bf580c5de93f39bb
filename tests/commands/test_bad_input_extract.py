"""Issue 17, ``extract``: bad input never loses good lines, never hangs, never overwrites the input; every output line
is JSON any reader takes (cases 1-4, 7-9 of the issue)."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import spacy_mtlave.extract as extract_module
from spacy_mtlave.extract import ExtractStats, extract_file, parse_line

from ..helpers import assert_one_line_error, invoke, strict_json

GOOD = [json.dumps({"id": i, "input": "Acme dark coffee , 12 oz"}) for i in range(300)]


def run_extract(model, source, target, *options):
    return invoke("extract", model, source, target, *options)


# 1: the output is the input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "relative path"])
def test_output_that_is_the_input_is_refused_and_the_input_untouched(trained_single, tmp_path, monkeypatch, how):
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(GOOD[:5]) + "\n")
    before = source.read_bytes()
    target = {"same path": source, "symlink": tmp_path / "link.jsonl", "hard link": tmp_path / "hard.jsonl", "relative path": "./in.jsonl"}[how]
    if how == "symlink":
        target.symlink_to(source)
    if how == "hard link":
        os.link(source, target)
    monkeypatch.chdir(tmp_path)
    result = run_extract(trained_single, source, target)
    assert_one_line_error(result, "would overwrite the input")
    assert source.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".partial"))] == []


def test_output_into_a_missing_folder_or_onto_a_folder_fails_before_loading_the_model(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(GOOD[0] + "\n")
    assert_one_line_error(run_extract("no_such_model", source, tmp_path / "missing" / "out.jsonl"), "folder not found")
    assert_one_line_error(run_extract("no_such_model", source, tmp_path), "is a directory")


# 2, 3: one monster line among good ones ---------------------------------------------------------------------------


def test_a_5000_digit_integer_keeps_every_line(trained_single, tmp_path):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    big = "9" * 5000
    lines = GOOD[:150] + ['{"id": %s, "input": "Acme dark coffee", "price": %s}' % (big, big)] + GOOD[150:299]
    source.write_text("\n".join(lines) + "\n")
    result = run_extract(trained_single, source, target)
    assert result.exit_code == 0, result.output
    records = [strict_json(line) for line in target.read_text().splitlines()]
    assert len(records) == 300 and all("error" not in r for r in records)
    assert records[150]["id"] == big and records[150]["attributes"]["Brand"][0]["value"] == "Acme"
    assert "1 id numbers that JSON cannot hold written as strings" in result.stderr


def test_deeply_nested_json_is_an_error_line(trained_single, tmp_path):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("\n".join(GOOD[:2] + ["[" * 100_000, '{"id": ' + "[" * 100_000 + "]"] + GOOD[2:4]) + "\n")
    stats = extract_file(trained_single, source, target, progress=False)
    records = [strict_json(line) for line in target.read_text().splitlines()]
    assert (stats.lines, stats.errors) == (6, 2)
    assert records[2] == {"line": 3, "error": "invalid JSON: nested too deeply"}
    assert records[3]["line"] == 4 and records[5]["id"] == 3


def test_an_id_too_deep_to_write_becomes_an_error_line():
    deep: list = []
    for _ in range(5 * sys.getrecursionlimit()):  # deeper than json.dumps goes (the parser stops sooner)
        deep = [deep]
    stats = ExtractStats(lines=6)
    line = stats.dumps({"id": deep, "attributes": {}})
    assert strict_json(line) == {"line": 7, "error": "field id cannot be written as JSON: nested too deeply"}
    assert (stats.lines, stats.errors) == (7, 1)


# 4: spaCy's own multiprocessing -----------------------------------------------------------------------------------

PIPE_TWO_PROCESSES = textwrap.dedent("""
    import sys
    import torch
    torch.set_num_threads(2)  # the parent uses torch's thread pool before forking (also on a 1-core machine)
    import spacy
    nlp = spacy.load(sys.argv[1])  # no import of spacy_mtlave: spaCy finds the components through entry points
    texts = ["Acme dark coffee , 12 oz", "Yogi herbal tea , 20 count"] * 10
    list(nlp.pipe(texts[:4]))
    docs = list(nlp.pipe(texts, n_process=2))
    print(len(docs), sorted({ent.label_ for doc in docs for ent in doc.ents}))
""")


@pytest.mark.slow
def test_nlp_pipe_with_two_processes_does_not_hang(trained_single):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    process = subprocess.Popen([sys.executable, "-c", PIPE_TWO_PROCESSES, str(trained_single)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the hung workers too
        process.communicate()
        pytest.fail("nlp.pipe(texts, n_process=2) hung for 60 s")
    assert process.returncode == 0, err
    assert out.startswith("20 ['Brand'"), out


# 7, 8: numbers JSON cannot hold, the BOM ---------------------------------------------------------------------------


def test_nan_and_infinite_ids_are_written_as_strings_and_counted(trained_single, tmp_path):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "2.5"]
    source.write_text("".join('{"id": %s, "input": "Acme dark coffee"}\n' % i for i in ids))
    result = run_extract(trained_single, source, target)
    assert result.exit_code == 0, result.output
    records = [strict_json(line) for line in target.read_text().splitlines()]
    assert [r["id"] for r in records] == ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", 2.5]
    assert "5 id numbers that JSON cannot hold written as strings" in result.stderr


def test_a_utf8_bom_on_line_1_is_ignored(trained_single, tmp_path):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + GOOD[0].encode() + b"\n" + GOOD[1].encode() + b"\n")
    stats = extract_file(trained_single, source, target, progress=False)
    assert (stats.lines, stats.errors) == (2, 0)
    assert [strict_json(line)["id"] for line in target.read_text().splitlines()] == [0, 1]


# 9: settings out of range -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("option,value", [("--max-length", "-5"), ("--max-length", "0"), ("--batch-size", "0"), ("--n-process", "0")])
def test_settings_below_1_are_one_line_errors(trained_single, tmp_path, option, value):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(GOOD[0] + "\n")
    assert_one_line_error(run_extract(trained_single, source, target, option, value), f"{option} must be at least 1, got {value}")
    assert not target.exists()


# 6 (extract side): duplicate keys ---------------------------------------------------------------------------------


def test_a_text_or_id_given_twice_with_different_values_is_an_error_line():
    raw = b'{"id": 1, "input": "Acme tea", "input": "Yogi tea"}'
    assert parse_line(raw, 1, "input", "id", 100) == ("", {"line": 1, "error": "field 'input' is given twice with different values"})
    text, record = parse_line(b'{"id": 1, "id": 2, "input": "Acme"}', 2, "input", "id", 100)
    assert record == {"line": 2, "error": "field 'id' is given twice with different values"}
    assert parse_line(b'{"id": 1, "input": "Acme", "input": "Acme"}', 3, "input", "id", 100) == ("Acme", {"id": 1, "attributes": {}})


# a failure or Ctrl-C midway: no complete-looking output ----------------------------------------------------------


def test_ctrl_c_midway_leaves_the_old_output_and_a_partial_file(trained_single, tmp_path, monkeypatch):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("\n".join(GOOD[:10]) + "\n")
    target.write_text("yesterday's output\n")
    real = extract_module.extract_lines

    def interrupted(*args, **kwargs):
        for n, record in enumerate(real(*args, **kwargs)):
            if n == 3:
                raise KeyboardInterrupt
            yield record

    monkeypatch.setattr(extract_module, "extract_lines", interrupted)
    result = run_extract(trained_single, source, target)
    assert result.exit_code == 130 and "interrupted: the lines written so far are in" in result.stderr
    assert target.read_text() == "yesterday's output\n"
    partial = tmp_path / "out.jsonl.partial"
    assert [strict_json(line)["id"] for line in partial.read_text().splitlines()] == [0, 1, 2]
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
