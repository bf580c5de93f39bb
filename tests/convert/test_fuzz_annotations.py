"""Issue 19 under the rules of issue 17: annotation files (``spans-jsonl``, ``label-studio``) with messy records and
arbitrary lines are converted (every record a doc or a counted skip) or refused in one line, never a traceback."""
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ..helpers import json_literal, json_object, messy
from .test_fuzz import NEWLINES, categories, check_conversion, lines_file, non_blank, rarely, titles

EXAMPLES = 25


@st.composite
def spans(draw, text: str, key: str = "label"):
    out = []
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.integers(0, max(len(text) - 1, 0)))
        end = draw(st.integers(start + 1, len(text) + 1))
        bounds = rarely(st.just((start, end)), [(-1, 3), (2, 2), (0, len(text) + 5), ("0", 1)], 15)
        s, e = draw(bounds)
        label = draw(rarely(st.sampled_from(["Brand", "Size", "Color"]), ["", None, 3], 15))
        out.append(draw(messy([("start", json.dumps(s)), ("end", json.dumps(e)), (key, json.dumps(label if key == "label" else [label]))], odd=20)))
    return "[" + ", ".join(out) + "]"


@st.composite
def spans_record(draw):
    text = draw(titles())
    answer = draw(rarely(st.sampled_from(["accept", "accept", "reject", "ignore"]), ["maybe", "3"]))
    pairs = [("text", json_literal(text)), ("spans", draw(spans(text))), ("answer", json.dumps(answer)), ("meta", json_object([("vertical", draw(categories()))]))]
    return draw(messy(pairs, odd=15))


@st.composite
def spans_jsonl_file(draw):
    text = lines_file(draw, spans_record())
    return text, non_blank(text), "in.jsonl", []


@st.composite
def label_studio_file(draw):
    tasks = []
    bad_numbers = [-1, 99, "0", None, True]
    for _ in range(draw(st.integers(0, 5))):
        text = draw(titles())
        result = []
        for _ in range(draw(st.integers(0, 3))):
            start = draw(st.integers(0, len(text) - 1))
            end = draw(st.integers(start + 1, len(text)))
            value = {"start": draw(rarely(st.just(start), bad_numbers, 20)), "end": draw(rarely(st.just(end), bad_numbers, 20)),
                     "labels": draw(rarely(st.sampled_from([["Brand"], ["Size"], ["Brand", "Size"]]), [[], [""], "Brand", None], 20))}
            if draw(st.booleans()):
                value["text"] = draw(rarely(st.just(text[start:end]), ["zz"], 20))
            result.append({"type": draw(st.sampled_from(["labels", "labels", "choices"])), "value": value})
        annotation = {"result": result, "was_cancelled": draw(st.sampled_from([False, False, True]))}
        task = {"id": len(tasks), "data": {"text": text, "vertical": json.loads(draw(categories()))},
                "annotations": draw(st.sampled_from([[annotation], [], [annotation, annotation]]))}
        tasks.append(draw(rarely(st.just(task), [{"data": "x"}, 3, {"data": {"txt": "a"}}], 20)))
    text = json.dumps(tasks, indent=draw(st.sampled_from([None, 1])), ensure_ascii=draw(st.booleans()))
    text = text.replace("\n", draw(st.sampled_from(NEWLINES)))
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]  # a truncated export
    return text, len(tasks), "export.json", []


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(data=st.data())
def test_any_spans_jsonl_file_is_converted_or_refused_in_one_line(data):
    content, n, name, options = data.draw(spans_jsonl_file(), label="input file")
    check_conversion("spans-jsonl", content, n, name, options)


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(data=st.data())
def test_any_label_studio_export_is_converted_or_refused_in_one_line(data):
    content, n, name, options = data.draw(label_studio_file(), label="input file")
    check_conversion("label-studio", content, n, name, options)
