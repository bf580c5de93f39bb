"""``extract --engine ray``: the local engine's records from a pool of Ray Data actors, every record exactly once (also
when a worker process is killed mid-run), bad input stopped with one line before any work."""
import json
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spacy_mtlave.catalog_io import output_schema, read_output
from spacy_mtlave.extract import extract_file

from ..helpers import assert_one_line_error, invoke
from .test_extract import make_input

ray = pytest.importorskip("ray")
from spacy_mtlave.extract_ray import (  # noqa: E402
    KILL_HOOK,
    SUCCESS,
    check_model,
    extract_ray,
    unpack_model,
)


@pytest.fixture(scope="module", autouse=True)
def embedded_ray():
    """One small local Ray for the module (two CPUs), shut down after it."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield
    ray.shutdown()


def ray_records(folder):
    """Every record of an output folder, by (file, row); fails on a record written twice."""
    records = {}
    for part in sorted(folder.glob("part-*")):
        for record in read_output(part):
            key = (record.pop("file"), record.pop("row"))
            assert key not in records, key
            records[key] = record
    return records


def test_same_records_as_the_local_engine(trained_single, tmp_path):
    source = tmp_path / "in.jsonl"
    make_input(source, 700)  # good, blank, truncated, non-object, missing and mistyped text lines
    extract_file(trained_single, source, tmp_path / "local.jsonl", batch_size=16, progress=False)
    stats = extract_ray(str(trained_single), str(source), tmp_path / "out", batch_size=16, workers=2,
                        rows_per_part=64, progress=False)
    local = read_output(tmp_path / "local.jsonl")
    records = ray_records(tmp_path / "out")
    assert sorted(records) == [(str(source), n) for n in range(1, 701)]
    assert [records[(str(source), n)] for n in range(1, 701)] == local
    assert (stats.records_in, stats.records_out, stats.errors, stats.parts) == (700, 700, 280, 11)
    assert stats.words > 0 and 1 <= len(stats.worker_pids) <= 2  # a loaded machine may start one actor late
    assert json.loads((tmp_path / "out" / SUCCESS).read_text())["records_out"] == 700
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_command_on_a_folder_of_parquet_and_jsonl_files(trained_single, tmp_path):
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    rows = [{"id": i, "input": ["Acme dark coffee , 12 oz", "Tazo red tea", None][i % 3]} for i in range(90)]
    pq.write_table(pa.Table.from_pylist(rows), catalog / "a.parquet", row_group_size=40)
    (catalog / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:10]) + "{oops\n")
    (catalog / "_ignored.jsonl").write_text("not read\n")
    target = tmp_path / "out"
    result = invoke("extract", trained_single, catalog, target, "--engine", "ray", "--workers", "2", "--format", "parquet")
    assert result.exit_code == 0, result.output
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("101 records in, 101 out, 34 errors, ") and "words/s" in summary and "s wall time" in summary
    assert all(pq.read_schema(p) == output_schema(with_source=True) for p in target.glob("part-*"))
    records = ray_records(target)
    assert len(records) == 101
    for n in range(1, 91):
        local = {"id": str(n - 1), "attributes": records[(str(catalog / "a.parquet"), n)].get("attributes")}
        assert records[(str(catalog / "a.parquet"), n)] == (local if (n - 1) % 3 != 2 else {"line": n, "error": "field 'input' is not a string (got NoneType)"})
    assert records[(str(catalog / "b.jsonl"), 11)]["error"].startswith("invalid JSON")
    assert records[(str(catalog / "a.parquet"), 1)]["attributes"]["Size"][0]["value"] == "12 oz"
    # run again onto the finished output: replaced whole, through a glob this time
    again = invoke("extract", trained_single, str(catalog / "*.parquet"), target, "--engine", "ray", "--workers", "1")
    assert again.exit_code == 0, again.output
    assert len(ray_records(target)) == 90 and {p.suffix for p in target.glob("part-*")} == {".jsonl"}


def test_a_killed_worker_is_replaced_and_nothing_is_lost_or_doubled_with_a_shipped_model(trained_single, tmp_path, monkeypatch):
    source, marker = tmp_path / "in.jsonl", tmp_path / "killed"
    source.write_text("".join(json.dumps({"id": i, "input": f"Acme dark coffee {i} , 12 oz"}) + "\n" for i in range(1200)))
    monkeypatch.setenv(KILL_HOOK, f"2:{marker}")  # the first worker to finish 2 pieces dies halfway through its third
    address = ray.get_runtime_context().gcs_address  # "joining" this cluster: the model folder is shipped as on a cluster
    stats = extract_ray(str(trained_single), str(source), tmp_path / "out", batch_size=20, workers=2,
                        rows_per_part=40, progress=False, address=address)
    killed = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)  # the worker process is gone
    records = ray_records(tmp_path / "out")  # fails on a record written twice
    assert sorted(n for _, n in records) == list(range(1, 1201))
    assert all(records[(str(source), n)]["id"] == n - 1 for n in range(1, 1201))
    assert (stats.records_out, stats.parts, stats.errors) == (1200, 30, 0)
    assert set(stats.worker_pids) - {killed}  # the pieces were finished by other processes (the replacement, the other)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_a_shipped_model_unpacks_once_per_machine(trained_single):
    archive = check_model(str(trained_single), ship=True)
    assert isinstance(archive, bytes)
    folder = unpack_model(archive)
    assert unpack_model(archive) == folder and (Path(folder) / "config.cfg").is_file()
    assert check_model(str(trained_single), ship=False) == str(trained_single.resolve())


# bad input: one line, exit 2, nothing written ----------------------------------------------------------------------


@pytest.mark.parametrize("case, message", [
    ("missing input", "input not found"),
    ("empty folder", "no .jsonl or .parquet files in the directory"),
    ("no match", "no input file matches"),
    ("no text column", "no column 'input'"),
    ("text not strings", "column 'input' holds int64, expected strings"),
    ("unreachable address", "--address 127.0.0.1:1: cannot reach a Ray cluster"),
    ("bad address", "--address nowhere: expected auto, HOST:PORT or ray://HOST:PORT"),
    ("output is a file", "is a file"),
    ("output is a foreign folder", "not an extract output"),
    ("output is the input", "would overlap the input"),
    ("workers", "--workers must be at least 1"),
    ("model", "cannot load model"),
])
def test_bad_input_stops_with_one_line_and_writes_nothing(trained_single, tmp_path, case, message):
    catalog, target = tmp_path / "catalog", tmp_path / "out"
    catalog.mkdir()
    options, source, model = [], catalog, trained_single
    if case == "missing input":
        source = tmp_path / "missing.jsonl"
    if case == "no match":
        source = tmp_path / "*.parquet"
    if case in ("no text column", "text not strings"):
        pq.write_table(pa.table({"id": [1, 2], "input" if case == "text not strings" else "title": [5, 6]}), catalog / "a.parquet")
    else:
        (catalog / "a.jsonl").write_text('{"id": 1, "input": "Acme"}\n') if case != "empty folder" else None
    if case == "unreachable address":
        options = ["--address", "127.0.0.1:1"]
    if case == "bad address":
        options = ["--address", "nowhere"]
    if case == "output is a file":
        target.write_text("x")
    if case == "output is a foreign folder":
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    if case == "output is the input":
        target = catalog
    if case == "workers":
        options = ["--workers", "0"]
    if case == "model":
        model = tmp_path / "no_model"
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke("extract", model, source, target, "--engine", "ray", *options)
    assert_one_line_error(result, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, no temporary folder


def test_without_ray_installed_one_line(trained_single, tmp_path, monkeypatch):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "input": "Acme"}\n')
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    result = invoke("extract", trained_single, source, tmp_path / "out", "--engine", "ray")
    assert_one_line_error(result, "the Ray engine needs Ray Data: pip install 'spacy-mtlave[ray]'")
    assert not (tmp_path / "out").exists()
