"""Issue 17, evaluate / suggest-partners / show / report: outputs checked before the work, settings in range, and
messages that name their file (cases 15 and 16 of the issue)."""
import json

import pytest

import spacy_mtlave.evaluation.evaluate as evaluate_module
from spacy_mtlave.training.run_info import read_run

from ..helpers import assert_no_traceback, assert_one_line_error, invoke


def no_work(*args, **kwargs):
    raise AssertionError("the command worked before checking its output")


# 15: outputs checked before the work ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["missing folder", "directory"])
def test_evaluate_output_is_checked_before_evaluating(trained_single, data_dir, tmp_path, monkeypatch, where):
    monkeypatch.setattr(evaluate_module, "evaluate_pipeline", no_work)
    output = tmp_path / "missing" / "scores.json" if where == "missing folder" else tmp_path
    result = invoke("evaluate", trained_single, data_dir / "coffee" / "test.spacy", "--output", output)
    assert_one_line_error(result, "folder not found" if where == "missing folder" else "is a directory")


@pytest.mark.parametrize("where", ["missing folder", "directory"])
def test_suggest_partners_output_is_checked_before_working(data_dir, tmp_path, monkeypatch, where):
    import spacy_mtlave.training.partner_verticals as partner_module

    monkeypatch.setattr(partner_module, "suggest_partners", no_work)
    output = tmp_path / "missing" / "partners.json" if where == "missing folder" else tmp_path
    result = invoke("suggest-partners", data_dir, "--vectors", data_dir / "vectors", "--output", output)
    assert_one_line_error(result, "folder not found" if where == "missing folder" else "is a directory")


def test_outputs_are_written_whole(trained_single, data_dir, tmp_path):
    output = tmp_path / "scores.json"
    result = invoke("evaluate", trained_single, data_dir / "coffee" / "test.spacy", "--output", output)
    assert result.exit_code == 0, result.output
    assert "macro_f1" in json.loads(output.read_text()) and [p.name for p in tmp_path.iterdir()] == ["scores.json"]


def test_show_takes_a_non_utf8_argument(trained_single, tmp_path):
    text = "Acme \udcff dark coffee"  # how Python hands over the byte 0xff of a command-line argument
    result = invoke("show", trained_single, text, "--output", tmp_path / "show.html")
    assert result.exit_code == 0, result.output
    assert "Acme \ufffd dark coffee".split()[1] in (tmp_path / "show.html").read_text()


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_show_port_out_of_range_is_one_line(trained_single, port):
    assert_one_line_error(invoke("show", trained_single, "Acme", "--serve", "--port", port), "--port must be between 1 and 65535")


def test_show_output_onto_a_directory_is_one_line(trained_single, tmp_path):
    assert_one_line_error(invoke("show", trained_single, "Acme", "--output", tmp_path), "is a directory")


# 16: settings in range, messages naming their file ---------------------------------------------------------------


@pytest.mark.parametrize("args,message", [
    (["--top", "-1"], "--top must be at least 1, got -1"),
    (["--top", "0"], "--top must be at least 1, got 0"),
    (["--thresh", "5"], "--thresh is a cosine similarity, between -1 and 1, got 5.0"),
])
def test_suggest_partners_settings_out_of_range(data_dir, args, message):
    assert_one_line_error(invoke("suggest-partners", data_dir, "--vectors", data_dir / "vectors", *args), message)


def test_rare_max_below_0_is_one_line(trained_single, data_dir, tmp_path):
    test = data_dir / "coffee" / "test.spacy"
    assert_one_line_error(invoke("evaluate", trained_single, test, "--rare-max", "-1"), "--rare-max must be 0 or more, got -1")
    assert_one_line_error(invoke("report", tmp_path, "--output", tmp_path / "report", "--rare-max", "-1"), "--rare-max must be 0 or more")


def test_evaluate_on_a_directory_or_a_corrupted_file_names_it(trained_single, data_dir, tmp_path):
    assert_one_line_error(invoke("evaluate", trained_single, data_dir / "coffee"), "coffee: is a folder, expected a .spacy file")
    broken = tmp_path / "broken.spacy"
    broken.write_bytes(b"\x00garbage")
    assert_one_line_error(invoke("evaluate", trained_single, broken), "broken.spacy: not a readable .spacy file ([E1014]")


def test_suggest_partners_names_a_corrupted_corpus(data_dir, tmp_path):
    for name in ("coffee", "tea"):
        (tmp_path / name).mkdir()
        for split in ("train", "dev"):
            (tmp_path / name / f"{split}.spacy").write_bytes((data_dir / name / f"{split}.spacy").read_bytes())
    (tmp_path / "tea" / "train.spacy").write_bytes(b"garbage")
    result = invoke("suggest-partners", tmp_path, "--vectors", data_dir / "vectors")
    assert_one_line_error(result, "tea/train.spacy: not a readable .spacy file")


@pytest.mark.parametrize("content,message", [
    ('{"kind": ', "malformed run.json"),
    ("[1, 2]", "malformed run.json (expected an object, got list)"),
    ('{"kind": "single", "coupling": "single", "seed": 0, "verticals": {"Coffee": {"model": 3}}}', "'verticals' must map each vertical"),
    ('{"kind": "single", "coupling": "single", "seed": "x", "verticals": {"Coffee": {"model": "m", "corpus": "c"}}}', "'seed' must be an integer"),
])
def test_a_malformed_run_json_is_named(tmp_path, content, message):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(content)
    with pytest.raises(ValueError, match="run.json: "):
        read_run(tmp_path / "run")
    result = invoke("report", tmp_path / "run", "--output", tmp_path / "report")
    assert_one_line_error(result, "run/run.json: ", message)


def test_a_corrupted_evaluation_cache_is_evaluated_again(trained_single, data_dir, tmp_path):
    from spacy_mtlave.evaluation.report import evaluate_run
    from spacy_mtlave.training.run_info import write_run_info

    write_run_info(tmp_path, "single", "single", 0, "single.cfg", {"Coffee": (trained_single, data_dir / "coffee")})
    (tmp_path / "eval_coffee.json").write_text("{broken")
    scores = evaluate_run(read_run(tmp_path), log=lambda line: None)
    assert scores["Coffee"]["n_docs"] == 12 and json.loads((tmp_path / "eval_coffee.json").read_text())["n_docs"] == 12


def test_every_case_of_the_issue_ends_without_a_traceback(trained_single, data_dir, tmp_path):
    """The quick command-line cases of issue 17 once more, all together: exit 0 or 2, never a traceback."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": NaN, "input": "Acme"}\n' + "[" * 100_000 + "\n")
    cases = [
        ["extract", trained_single, source, source],
        ["extract", trained_single, source, tmp_path / "out.jsonl", "--max-length", "-5"],
        ["convert", source, tmp_path / "corpus", "--format", "mave"],
        ["train", data_dir / "coffee", tmp_path / "t", "--foo", "5"],
        ["evaluate", trained_single, data_dir / "coffee", "--output", tmp_path / "nowhere" / "x.json"],
        ["show", trained_single, "caf\udce9", "--port", "99999", "--serve"],
        ["suggest-partners", data_dir, "--top", "-1"],
    ]
    for case in cases:
        assert_no_traceback(invoke(*case))
