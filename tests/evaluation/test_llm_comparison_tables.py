"""The comparison table of ``benchmarks/llm_comparison.py``: rows read back from a previous tabulation's JSON beside
newly scored ones (issue 15's runs do not all survive between machines)."""
import json

import pytest

from ..helpers import load_benchmark


@pytest.fixture(scope="module")
def llm():
    return load_benchmark("llm_comparison")


def fake_run(f1: float, categories=("Coffee",)) -> dict:
    micro = {"precision": f1 + 0.05, "recall": f1 - 0.05, "f1": f1}
    return {"overall": {"micro": micro, "macro": micro, "counts": {}, "n_slots": 10}, "per_category": {c: micro for c in categories},
            "cpu_seconds_per_1000_titles": 1.5, "train_seconds": 600.0}


def test_previous_rows_kept_new_rows_replace_and_order_by_split(llm):
    previous = {"single|large": [fake_run(0.70)], "group|large": [fake_run(0.73)], "group_values_ensemble3_votes2|large": [fake_run(0.77)],
                "group|small": [fake_run(0.58)], "group_minilm|small": [fake_run(0.10)]}
    new = {("group_minilm", "small"): [fake_run(0.61), fake_run(0.63)], ("group_minilm", "large"): [fake_run(0.76)]}
    merged, read_back = llm.with_previous(new, json.loads(json.dumps(previous)))
    assert list(merged) == [("single", "large"), ("group", "large"), ("group_minilm", "large"), ("group_values_ensemble3_votes2", "large"),
                            ("group", "small"), ("group_minilm", "small")]
    assert [r["overall"]["micro"]["f1"] for r in merged[("group_minilm", "small")]] == [0.61, 0.63]  # the new scores, not the old row
    assert read_back == ["single|large", "group|large", "group_values_ensemble3_votes2|large", "group|small"]


def test_table_shows_merged_rows_with_mean_and_sd(llm):
    merged, _ = llm.with_previous({("group_minilm", "large"): [fake_run(0.76), fake_run(0.78)]}, {"group|large": [fake_run(0.73)]})
    text = llm.table(merged)
    rows = [line for line in text.splitlines() if "MiniLM" in line and "| large |" in line]
    assert len(rows) == 1 and "| 2 |" in rows[0] and "77.0 +- 1.4" in rows[0]
    assert text.index("all 10 verticals, GloVe, coupling (`train-group`, default)") < text.index("all 10 verticals, MiniLM")


def test_label_of_several_systems_voting(llm):
    assert llm.label_of("group_values_ensemble3_votes2") == llm.LABELS["group_values_ensemble3_votes2"]
    label = llm.label_of("group_values+group_minilm_ensemble6_votes3")
    assert label.startswith(llm.LABELS["group_values"] + " + " + llm.LABELS["group_minilm"])
    assert "6 runs" in label and ">= 3 votes" in label
    assert llm.label_of("something_else") == "something_else"


def test_unknown_ensemble_system_is_a_usage_error(llm, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("sys.argv", ["llm_comparison.py", "--out", str(tmp_path), "--collect-only", "--ensemble-systems", "group_values+group_minlm:3"])
    with pytest.raises(SystemExit) as exit_info:
        llm.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--ensemble-systems" in err and "group_minlm" in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_ensemble_members_of_one_and_of_several_systems(llm, tmp_path):
    assert llm.ensemble_members(tmp_path, "large", "group_values", [0, 1, 2]) == [tmp_path / "large" / f"seed{s}" / "group_values" for s in (0, 1, 2)]
    members = llm.ensemble_members(tmp_path, "small", "group_values+group_minilm", [0, 1])
    assert [m.relative_to(tmp_path).as_posix() for m in members] == [
        "small/seed0/group_values", "small/seed1/group_values", "small/seed0/group_minilm", "small/seed1/group_minilm"]


def test_ensemble_specs_with_their_own_vote_setting(llm):
    assert llm.ensemble_specs(["group_values", "group_values+group_minilm:3"], [2]) == [("group_values", [2]), ("group_values+group_minilm", [3])]
    assert llm.ensemble_specs(["group"], []) == [("group", [])]
    with pytest.raises(ValueError, match="group:x"):
        llm.ensemble_specs(["group:x"], [2])


def test_error_breakdown_of_a_run_and_of_the_run_voting_with_itself(llm, tmp_path, trained_single):
    import random

    from ..helpers import make_title

    rng = random.Random(7)
    records = []
    for _ in range(12):
        text, spans = make_title(rng, "Coffee")
        gold = {"Brand": {"n/a": 1}, "Flavor": {"n/a": 1}, "Size": {"n/a": 1}}
        for start, end, label in spans:
            gold[label] = {text[start:end]: 1}
        records.append({"input": text, "category": "Coffee", "target_scores": gold})
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(r) + "\n" for r in records))
    empty = tmp_path / "train_other.jsonl"  # no Coffee values
    empty.write_text(json.dumps({"input": "Yogi green tea", "category": "Tea", "target_scores": {"Brand": {"Yogi": 1}}}) + "\n")
    run = trained_single.parent  # the training output folder (run.json), as llm_comparison keeps runs
    with pytest.raises(ValueError, match="no run.json"):
        llm.error_breakdown([trained_single], test, empty)
    one = llm.error_breakdown([run], test, empty)
    n_values = sum(1 for r in records for v in r["target_scores"].values() if v != {"n/a": 1})
    assert one["VC"] + one["VN"] + one["VW boundary"] + one["VW other"] == n_values
    assert one["VC"] > 0  # the tiny model finds some values
    assert one["missed or wrong, unseen value"] == one["VN"] + one["VW boundary"] + one["VW other"]  # nothing seen in training
    assert llm.error_breakdown([run, run], test, empty, min_votes=2) == one  # a run agrees with itself
    assert llm.error_breakdown([run], test, test)["missed or wrong, unseen value"] == 0  # every gold value seen
