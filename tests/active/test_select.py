"""``select`` (issue 19): ranking by the CRF's uncertainty, duplicates skipped, both task shapes, bad input, and the
round trip select -> (simulated annotation) -> convert --merge-into."""
import json
import random
import shutil

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_mtlave.active.select import read_pool, score_pool, select_texts
from spacy_mtlave.convert import reference_nlp

from ..helpers import assert_one_line_error, invoke, make_title

ODD = "Zq xv wkp ## 77 !! Bigelow , , , herbal herbal herbal mix 1 lb 12 oz 100 ct espresso Twinings powder beans leaves"


def pool_file(path, texts, ids=True):
    with path.open("w", encoding="utf-8") as handle:
        for i, text in enumerate(texts):
            handle.write(json.dumps({"id": f"p{i}", "text": text} if ids else {"text": text}) + "\n")
    return path


def titles(n, seed=5, vertical="Coffee"):
    rng = random.Random(seed)
    return [make_title(rng, vertical) for _ in range(n)]


@pytest.fixture(scope="module")
def nlp(trained_single):
    return spacy.load(trained_single)


def test_the_known_uncertain_text_is_chosen_first(trained_single, nlp, tmp_path):
    pool = [text for text, _ in titles(12)]
    pool.insert(5, ODD)
    scored = score_pool(nlp, "ave_tagger", pool)
    for strategy in ("least-confidence", "entropy"):
        out = tmp_path / f"{strategy}.jsonl"
        result = invoke("select", trained_single, pool_file(tmp_path / "pool.jsonl", pool), out, "--n", 4, "--strategy", strategy, "--near-duplicate", 1.0)
        assert result.exit_code == 0, result.output
        tasks = [json.loads(line) for line in out.read_text().splitlines()]
        assert tasks[0]["text"] == ODD, strategy
        # the whole ranking follows the scores
        key = "least_confidence" if strategy == "least-confidence" else "entropy"
        values = [t["meta"][key] for t in tasks]
        assert values == sorted(values, reverse=True)
        assert [t["meta"]["rank"] for t in tasks] == [1, 2, 3, 4]
    assert max(range(len(pool)), key=lambda i: scored[i][1].entropy) == 5


def test_spans_jsonl_tasks_carry_the_models_spans_and_confidences(trained_single, nlp, tmp_path):
    pool = [text for text, _ in titles(6)]
    out = tmp_path / "tasks.jsonl"
    result = invoke("select", trained_single, pool_file(tmp_path / "pool.jsonl", pool), out, "--n", 3, "--near-duplicate", 1.0)
    assert result.exit_code == 0, result.output
    assert "chose 3 by least-confidence" in result.stderr
    for line in out.read_text().splitlines():
        task = json.loads(line)
        assert set(task) == {"text", "tokens", "spans", "meta"}
        doc = nlp(task["text"])
        assert [(s["start"], s["end"], s["label"]) for s in task["spans"]] == [(e.start_char, e.end_char, e.label_) for e in doc.ents]
        for span, ent in zip(task["spans"], doc.ents):
            assert span["token_start"] == ent.start and span["token_end"] == ent.end - 1
            assert span["confidence"] == pytest.approx(ent._.confidence, abs=1e-4)
        assert [t["text"] for t in task["tokens"]] == [t.text for t in doc]
        meta = task["meta"]
        assert meta["id"].startswith("p") and meta["strategy"] == "least-confidence"
        assert 0 <= meta["least_confidence"] <= 1 and meta["entropy"] >= 0


def test_label_studio_tasks(trained_single, nlp, tmp_path):
    pool = [text for text, _ in titles(5)]
    out = tmp_path / "tasks.json"
    result = invoke("select", trained_single, pool_file(tmp_path / "pool.jsonl", pool), out, "--n", 2, "--format", "label-studio", "--strategy", "random")
    assert result.exit_code == 0, result.output
    tasks = json.loads(out.read_text())
    assert len(tasks) == 2
    for task in tasks:
        assert task["data"]["text"] in pool and task["data"]["strategy"] == "random"
        (prediction,) = task["predictions"]
        assert 0 <= prediction["score"] <= 1
        doc = nlp(task["data"]["text"])
        assert [(r["value"]["start"], r["value"]["end"], r["value"]["labels"]) for r in prediction["result"]] == [(e.start_char, e.end_char, [e.label_]) for e in doc.ents]
        for region in prediction["result"]:
            assert region["type"] == "labels" and region["from_name"] == "label" and region["to_name"] == "text"
            assert region["value"]["text"] == task["data"]["text"][region["value"]["start"]:region["value"]["end"]]


def test_duplicates_are_skipped_and_counted(trained_single, tmp_path):
    out = tmp_path / "tasks.jsonl"
    for pool, reason in ((["Acme dark coffee , 12 oz", "ACME dark coffee, 20 oz", "Yogi green tea , 1 lb"], "exact"),
                         (["Acme dark coffee , 12 oz", "Acme dark coffee beans , 12 oz", "Yogi green tea , 1 lb"], "near")):
        result = invoke("select", trained_single, pool_file(tmp_path / "pool.jsonl", pool), out, "--n", 3)
        assert result.exit_code == 0, result.output
        chosen = [json.loads(line)["text"] for line in out.read_text().splitlines()]
        assert len(chosen) == 2 and "Yogi green tea , 1 lb" in chosen
        assert f"skipping 1 {reason} duplicates" in result.stderr
        assert "asked for 3, the pool holds only 3 texts, 2 of them distinct: took them all" in result.stderr


def test_n_larger_than_the_pool_takes_all_and_says_so(trained_single, tmp_path):
    pool = tmp_path / "pool.txt"
    pool.write_text("Acme dark coffee , 12 oz\n\nYogi green tea , 1 lb\n", encoding="utf-8")  # plain text, a blank line
    out = tmp_path / "tasks.jsonl"
    result = invoke("select", trained_single, pool, out, "--n", 10)
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 2
    assert "asked for 10, the pool holds only 2 texts: took them all" in result.stderr
    tasks = [json.loads(line) for line in out.read_text().splitlines()]
    assert {t["meta"]["line"] for t in tasks} == {1, 3} and all(t["meta"]["id"] is None for t in tasks)


@pytest.mark.parametrize("content", ["", "\n\n", '{"id": 1, "text": "  "}\n'])
def test_an_empty_pool_is_one_line(trained_single, tmp_path, content):
    pool = tmp_path / "pool.jsonl"
    pool.write_text(content, encoding="utf-8")
    out = tmp_path / "tasks.jsonl"
    assert_one_line_error(invoke("select", trained_single, pool, out, "--n", 3), "pool.jsonl", "empty pool")
    assert not out.exists()


def test_a_malformed_pool_line_names_file_and_line(trained_single, tmp_path):
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"text": "Acme coffee"}\n{"text": "Yogi tea"\n', encoding="utf-8")
    assert_one_line_error(invoke("select", trained_single, pool, tmp_path / "o.jsonl", "--n", 1), "pool.jsonl:2", "malformed JSON")
    pool.write_text('{"text": "Acme coffee"}\n{"title": "Yogi tea"}\n', encoding="utf-8")
    assert_one_line_error(invoke("select", trained_single, pool, tmp_path / "o.jsonl", "--n", 1), "pool.jsonl:2", "'text'", "missing")
    pool.write_text('{"text": 5}\n', encoding="utf-8")
    assert_one_line_error(invoke("select", trained_single, pool, tmp_path / "o.jsonl", "--n", 1), "pool.jsonl:1", "expected a string")


def test_a_model_without_ave_tagger_is_one_line(tmp_path):
    model = tmp_path / "model"
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.to_disk(model)
    pool = pool_file(tmp_path / "pool.jsonl", ["Acme coffee"])
    assert_one_line_error(invoke("select", model, pool, tmp_path / "o.jsonl", "--n", 1), "no ave_tagger component")
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("args,fragment", [(["--n", 0], "--n must be at least 1"), (["--n", 1, "--strategy", "margin"], "--strategy"),
                                           (["--n", 1, "--format", "csv"], "--format"), (["--n", 1, "--near-duplicate", 0], "--near-duplicate")])
def test_bad_settings_are_one_line(trained_single, tmp_path, args, fragment):
    pool = pool_file(tmp_path / "pool.jsonl", ["Acme coffee"])
    assert_one_line_error(invoke("select", trained_single, pool, tmp_path / "o.jsonl", *args), fragment)


def test_read_pool_text_field(tmp_path):
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"title": "Acme coffee", "sku": 7}\n', encoding="utf-8")
    items, empty = read_pool(pool, "title", "sku")
    assert [(i.line, i.text, i.id) for i in items] == [(1, "Acme coffee", 7)] and empty == 0


def test_round_trip_select_annotate_convert_merge(trained_single, data_dir, tmp_path):
    """select -> an annotator fixes the spans (gold from the generator), accepts 3, rejects 1, ignores 1 -> convert
    --merge-into a copy of the corpus: the 3 accepted titles are added once, the rejected ones counted."""
    corpus = tmp_path / "corpus"
    shutil.copytree(data_dir / "coffee", corpus / "coffee")
    train_before = list(DocBin().from_disk(corpus / "coffee" / "train.spacy").get_docs(reference_nlp().vocab))
    gold = dict(titles(40, seed=77))
    existing = train_before[0].text  # a title already in train comes back annotated: not added twice
    gold[existing] = [(e.start_char, e.end_char, e.label_) for e in train_before[0].ents]
    pool = [t for t in gold if t not in {d.text for d in train_before[1:]}]
    tasks_path = tmp_path / "tasks.jsonl"
    result = invoke("select", trained_single, pool_file(tmp_path / "pool.jsonl", pool), tasks_path, "--n", 6, "--near-duplicate", 1.0, "--vertical", "Coffee")
    assert result.exit_code == 0, result.output
    tasks = [json.loads(line) for line in tasks_path.read_text().splitlines()]
    if existing not in {t["text"] for t in tasks}:
        tasks[-1] = dict(tasks[-1], text=existing)
    answers = ["accept", "accept", "reject", "accept", "ignore", "accept"]
    with (tmp_path / "annotated.jsonl").open("w") as handle:
        for task, answer in zip(tasks, answers):
            task["spans"] = [{"start": s, "end": e, "label": label} for s, e, label in gold[task["text"]]]
            task["answer"] = answer
            handle.write(json.dumps(task) + "\n")
    result = invoke("convert", tmp_path / "annotated.jsonl", tmp_path / "new", "--format", "spans-jsonl", "--dev-every", 0, "--merge-into", corpus)
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "new" / "stats.json").read_text())
    assert stats["sources"]["train"]["skipped"] == {"answer ignore": 1, "answer reject": 1}
    assert stats["verticals"]["Coffee"]["examples"]["train"] == 4
    accepted = [t for t, a in zip(tasks, answers) if a == "accept"]
    after = list(DocBin().from_disk(corpus / "coffee" / "train.spacy").get_docs(reference_nlp().vocab))
    added = [t for t in accepted if t["text"] != existing]
    assert len(after) == len(train_before) + len(added)
    assert [d.text for d in after[: len(train_before)]] == [d.text for d in train_before]
    by_text = {d.text: d for d in after[len(train_before):]}
    for task in added:
        doc = by_text[task["text"]]
        assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [(s["start"], s["end"], s["label"]) for s in task["spans"]]
        assert doc._.vertical == "Coffee"
    assert f"{len(added)} added" in result.output
    if existing in {t["text"] for t in accepted}:
        assert "1 already in train" in result.output


def test_a_joint_pipeline_needs_tagger_and_gets_that_heads_spans(data_dir, tmp_path):
    from ..helpers import joint_nlp

    nlp = joint_nlp(data_dir)
    pool = pool_file(tmp_path / "pool.jsonl", [text for text, _ in titles(4)])
    with pytest.raises(ValueError, match="several ave_tagger components"):
        select_texts(nlp, pool, tmp_path / "o.jsonl", 2)
    stats = select_texts(nlp, pool, tmp_path / "o.jsonl", 2, tagger="tagger_v1")
    assert stats.chosen == 2
    tasks = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    labels = set(nlp.get_pipe("tagger_v1").labels)
    assert all(t["meta"]["vertical"] == "Coffee" for t in tasks)
    assert all(s["label"] in labels for t in tasks for s in t["spans"])
