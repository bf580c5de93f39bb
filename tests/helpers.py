"""Shared test helpers: small synthetic product verticals (Coffee, Tea, Cocoa titles), a tiny vectors table and a
tiny model config (``TINY``), the command line in-process with its error-line checks, and the hypothesis strategies of
the fuzz tests. Fixtures built from them live in ``conftest.py``."""
import importlib.util
import json
import random
import re
from pathlib import Path
from typing import Dict, List, Tuple

import numpy
import spacy
from hypothesis import strategies as st
from spacy.tokens import DocBin
from spacy.training.initialize import init_nlp
from spacy.util import fix_random_seed, load_config
from spacy.vectors import Vectors

from spacy_mtlave.training.corpus import create_vertical_corpus
from spacy_mtlave.training.train import CONFIG_DIR
from spacy_mtlave.vertical import set_vertical

BRANDS = ["Acme", "Lavazza", "Twinings", "Folgers", "Bigelow", "Yogi", "Peets", "Tazo"]
COLORS = ["red", "green", "black", "white", "herbal", "dark"]
NOUNS = {"Coffee": ["coffee", "beans", "espresso"], "Tea": ["tea", "bags", "leaves"], "Cocoa": ["cocoa", "powder", "mix"]}
SIZES = ["12 oz", "20 count", "1 lb", "100 ct"]

# a model small enough to train in seconds
TINY: Dict[str, object] = {
    "components.tok2vec.model.embed.width": 16,
    "components.tok2vec.model.embed.rows": [200, 100, 100, 50],
    "components.tok2vec.model.embed.char_dim": 8,
    "components.tok2vec.model.embed.char_width": 8,
    "components.tok2vec.model.encode.hidden_width": 32,
    "training.eval_frequency": 10,
    "training.patience": 0,
    "training.max_epochs": 0,
    "training.optimizer.learn_rate": 0.01,
}


def make_title(rng: random.Random, vertical: str) -> Tuple[str, List[Tuple[int, int, str]]]:
    """A title like 'Acme dark coffee , 12 oz' and its character spans (start, end, label)."""
    parts = [(rng.choice(BRANDS), "Brand"), (rng.choice(COLORS), "Flavor"), (rng.choice(NOUNS[vertical]), None), (",", None), (rng.choice(SIZES), "Size")]
    if rng.random() < 0.3:
        parts = parts[1:]  # no brand
    text, spans = "", []
    for value, label in parts:
        start = len(text) + (1 if text else 0)
        text = f"{text} {value}" if text else value
        if label:
            spans.append((start, start + len(value), label))
    return text, spans


def make_docs(nlp, vertical: str, n: int, seed: int):
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        text, spans = make_title(rng, vertical)
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(s, e, label=label) for s, e, label in spans]
        set_vertical(doc, vertical)
        docs.append(doc)
    return docs


def write_corpus(path: Path, vertical: str, n_train: int = 60, n_dev: int = 12, seed: int = 0) -> Path:
    nlp = spacy.blank("en")
    path.mkdir(parents=True, exist_ok=True)
    for split, n, s in (("train", n_train, seed), ("dev", n_dev, seed + 1000), ("test", n_dev, seed + 2000)):
        DocBin(docs=make_docs(nlp, vertical, n, s), store_user_data=True).to_disk(path / f"{split}.spacy")
    return path


def write_vectors(path: Path, dim: int = 8) -> Path:
    """A vectors-only pipeline with lower-cased keys for the fixture vocabulary."""
    nlp = spacy.blank("en")
    words = sorted({w.lower() for w in BRANDS + COLORS + sum(NOUNS.values(), []) + " ".join(SIZES).split()} | {","})
    rng = numpy.random.RandomState(0)
    data = rng.normal(size=(len(words), dim)).astype("float32")
    nlp.vocab.vectors = Vectors(strings=nlp.vocab.strings, data=data, keys=[nlp.vocab.strings.add(w) for w in words])
    nlp.to_disk(path)
    return path


def joint_nlp(data_dir: Path, **overrides):
    settings = dict(TINY)
    settings.update({
        "paths.vectors": str(data_dir / "vectors"),
        "components.tagger_v1.vertical": "Coffee",
        "components.tagger_v2.vertical": "Tea",
        "training.dropout": 0.0,
        "components.tok2vec.model.encode.dropout": 0.0,
    })
    for i, name in ((1, "coffee"), (2, "tea")):
        settings[f"paths.train{i}"] = str(data_dir / name / "train.spacy")
        settings[f"paths.dev{i}"] = str(data_dir / name / "dev.spacy")
    settings.update(overrides)
    fix_random_seed(0)
    return init_nlp(load_config(CONFIG_DIR / "pair.cfg", overrides=settings, interpolate=False))


def train_examples(nlp, data_dir):
    paths = {"v1": str(data_dir / "coffee" / "train.spacy"), "v2": str(data_dir / "tea" / "train.spacy")}
    return list(create_vertical_corpus(paths)(nlp))


def invoke(*args):
    """The command line in-process (``python -m spacy_mtlave ARGS``), every argument as a string."""
    from typer.testing import CliRunner

    from spacy_mtlave.cli import app

    return CliRunner().invoke(app, [str(arg) for arg in args])


def assert_no_traceback(result) -> None:
    """A command ended by itself: exit code 0 or 2, no exception but its own exit, no traceback printed."""
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def strict_json(line: str):
    """``json.loads`` refusing NaN and Infinity, as JavaScript, Go or jq readers do."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit code 2 and exactly one ``error: ...`` line on stderr holding every fragment; returns the line."""
    assert_no_traceback(result)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# hypothesis strategies of the fuzz tests (tests/convert/test_fuzz.py, tests/commands/test_fuzz_extract.py): JSON text
# written by hand, so that it can hold what Python's json module stumbles on -----------------------------------------

ODD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1E400", "1e-999", "-0", "9" * 5000, "-" + "7" * 4301]
PLAIN_JSON = ["null", "true", "false", "0", "1", "-5", "2.5", "[]", "{}", '""', '" "']
ESCAPES = ["", "", "", "\\ud800", "\\udfff", "\\ud83d\\ude00", "\\u0000", "\\n", "\\r", "\\t"]
WORDS = BRANDS + COLORS + ["tea", "coffee", "12 oz", "20 count", "咖啡", "😀", "\u00a0", "Tee", "&amp;", "<b>"]
CATEGORIES = ["Tea", "Coffee", "Tea", "", " ", "咖啡", "☕", "Tea >> Green", "T" * 300, "../up"]


def json_literal(text: str, escape: str = "", ascii_only: bool = False) -> str:
    """``text`` as a JSON string literal, with a raw JSON ``escape`` (such as a lone surrogate) at its end."""
    return json.dumps(text, ensure_ascii=ascii_only)[:-1] + escape + '"'


def json_object(pairs) -> str:
    """An object from (key, JSON text) pairs, duplicate keys kept as written."""
    return "{" + ", ".join(f"{json.dumps(key)}: {value}" for key, value in pairs) + "}"


@st.composite
def json_strings(draw, words=WORDS) -> str:
    text = " ".join(draw(st.lists(st.sampled_from(words) | st.text(max_size=6), max_size=5)))
    return json_literal(text, draw(st.sampled_from(ESCAPES)), draw(st.booleans()))


@st.composite
def json_values(draw, depth: int = 2) -> str:
    """JSON text of any value: odd numbers, lone-surrogate escapes, duplicate keys, nesting."""
    kind = draw(st.integers(0, 5 if depth else 2))
    if kind == 0:
        return draw(st.sampled_from(PLAIN_JSON + ODD_NUMBERS))
    if kind in (1, 2):
        return draw(json_strings())
    if kind == 3:
        return "[" + ", ".join(draw(st.lists(json_values(depth - 1), max_size=3))) + "]"
    return json_object(draw(st.lists(st.tuples(st.sampled_from(["a", "b", "value", "key", "pid"]), json_values(depth - 1)), max_size=3)))


def one_in(odds: int) -> st.SearchStrategy:
    """True one time in ``odds`` (``st.integers`` would favour its bounds)."""
    return st.sampled_from([True] + [False] * (odds - 1))


@st.composite
def messy(draw, pairs, odd: int = 12, keep=()):
    """``pairs`` of a record; now and then (1 in ``odd`` each) a value replaced by any JSON, a field dropped, a key
    given twice or a field added; the fields named in ``keep`` are never touched (nor added again)."""
    pairs = list(pairs)
    free = [i for i, (key, _) in enumerate(pairs) if key not in keep]
    if free and draw(one_in(odd)):
        i = draw(st.sampled_from(free))
        pairs[i] = (pairs[i][0], draw(json_values()))
    if free and draw(one_in(odd)):
        del pairs[draw(st.sampled_from(free))]
    free = [pair for pair in pairs if pair[0] not in keep]
    if free and draw(one_in(odd // 2)):
        pairs.append(draw(st.sampled_from(free)))
    if draw(one_in(odd // 2)):
        pairs.append((draw(st.sampled_from([k for k in ("extra", "n", "id") if k not in keep])), draw(json_values())))
    return json_object(pairs)


def any_line() -> st.SearchStrategy:
    """A line that is anything: JSON of any kind, deep nesting, text, bytes that are not UTF-8 (no line breaks)."""
    deep = st.integers(1, 4).map(lambda k: "[" * 10 ** k + "]" * (10 ** k if k < 4 else 0))
    raw = st.binary(max_size=30).map(lambda b: b.decode("utf-8", "surrogateescape"))
    return (json_values() | deep | st.text(max_size=30) | raw).map(lambda line: re.sub(r"[\r\n]", " ", line))


def load_benchmark(name: str):
    """A script of ``benchmarks/`` (``name`` without .py) imported as a module, to test its helpers."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
