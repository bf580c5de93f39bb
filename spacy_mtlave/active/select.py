"""``select``: choose the unlabeled texts worth annotating next and write them as pre-filled annotation tasks.

1. read the pool (JSONL with a text and an id field, or a plain text file, one text a line);
2. rank it by the ``ave_tagger``'s uncertainty (:mod:`.uncertainty`: ``least-confidence`` or ``entropy``, most
   uncertain first, ties in pool order) or in a seeded random order (``random``);
3. walk down the ranking and keep a text unless it duplicates a text kept before it (:mod:`.dedupe`), until N texts;
4. write them, in rank order, pre-filled with the model's spans and their confidences (``span._.confidence``):
   ``spans-jsonl`` (``{"text", "tokens", "spans", "meta"}``, the task shape spaCy-based annotation tools such as
   Prodigy read and write) or ``label-studio`` (Label Studio's task import JSON: ``data`` + ``predictions`` whose
   ``result`` items are of type ``labels``, ``from_name`` "label", ``to_name`` "text").

Bad input: a malformed pool line, a missing or non-string text field, an empty pool, a model that cannot be loaded or
has no ``ave_tagger`` stop the run before anything is written (ValueError, one line; the CLI exits 2). Empty texts are
skipped and counted; N larger than the pool (or than its distinct texts) takes them all and says so.
"""
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ..json_input import RawNumber, raw_number_as_string, type_name
from .dedupe import DuplicateFilter
from .uncertainty import STRATEGIES, Uncertainty, tagger_uncertainty

TASK_FORMATS = ("spans-jsonl", "label-studio")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
PROGRESS_MIN = 1000  # pools at least this large get a progress bar (on a terminal)


@dataclass
class PoolText:
    """One text of the pool: its line in the input, the text, its id (None when absent)."""

    line: int
    text: str
    id: Any = None


@dataclass
class Choice:
    """A chosen text with the doc the pipeline annotated and the tagger's uncertainty about it."""

    item: PoolText
    doc: Any
    uncertainty: Uncertainty
    rank: int


@dataclass
class SelectStats:
    pool: int = 0
    empty: int = 0
    asked: int = 0
    chosen: int = 0
    skipped: Counter = field(default_factory=Counter)
    strategy: str = ""
    output: str = ""
    fmt: str = ""

    def summary(self) -> List[str]:
        lines = [f"pool: {self.pool} texts" + (f" ({self.empty} empty texts skipped)" if self.empty else "")]
        dup = ", ".join(f"{n} {reason}s" for reason, n in sorted(self.skipped.items()))
        lines.append(f"chose {self.chosen} by {self.strategy}" + (f", skipping {dup}" if dup else "") + f"; wrote {self.output} ({self.fmt})")
        if self.chosen < self.asked:
            held = f"{self.pool} texts" + (f", {self.chosen} of them distinct" if self.chosen < self.pool else "")
            lines.append(f"note: asked for {self.asked}, the pool holds only {held}: took them all")
        return lines


def check_settings(n: int, strategy: str, fmt: str, near_duplicate: float, batch_size: int) -> None:
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    if strategy not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if fmt not in TASK_FORMATS:
        raise ValueError(f"--format must be one of {', '.join(TASK_FORMATS)}, got {fmt!r}")
    if not 0.0 < near_duplicate <= 1.0:
        raise ValueError(f"--near-duplicate must be in (0, 1], got {near_duplicate}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch_size}")


def is_jsonl(path: Path, first_line: str) -> bool:
    """JSONL by the file name (.jsonl, .ndjson, .json), plain text by .txt, else JSONL when the first non-blank line
    starts with ``{``."""
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return True
    if suffix == ".txt":
        return False
    return first_line.lstrip().startswith("{")


def read_pool(path: Union[str, Path], text_field: str = "text", id_field: str = "id") -> Tuple[List[PoolText], int]:
    """(texts, number of empty texts skipped). JSONL: one object a line, ``text_field`` a string (required), the id
    from ``id_field`` (optional); plain text: every non-blank line. ValueError ``FILE:LINE: ...`` on a malformed
    line; ``FILE: empty pool`` when no text is left."""
    from ..convert.records import iter_lines, load_json

    from ..convert.errors import ConvertError

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, expected the pool file")
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        lines = list(iter_lines(path))
    except ConvertError as err:
        if err.problem != "empty file":
            raise
        lines = []
    first = next((line for _, line in lines if line.strip()), "")
    items: List[PoolText] = []
    empty = 0
    jsonl = is_jsonl(path, first)
    for number, line in lines:
        if not line.strip():
            continue
        if not jsonl:
            items.append(PoolText(number, line.strip(), None))
            continue
        obj, _ = load_json(line, path, number)
        if not isinstance(obj, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type_name(obj)}")
        if text_field not in obj:
            raise ValueError(f"{path}:{number}: field {text_field!r}: missing (set --text-field)")
        text = obj[text_field]
        if not isinstance(text, str):
            raise ValueError(f"{path}:{number}: field {text_field!r}: expected a string, got {type_name(text)}")
        if not text.strip():
            empty += 1
            continue
        ident = obj.get(id_field)
        items.append(PoolText(number, text, ident.text if isinstance(ident, RawNumber) else ident))
    if not items:
        raise ValueError(f"{path}: empty pool: no text to select from" + (f" ({empty} empty texts)" if empty else ""))
    return items, empty


def find_tagger(nlp, name: Optional[str] = None) -> str:
    """The name of the pipeline's ``ave_tagger`` (``name`` if given); ValueError when there is none or several."""
    from ..pipeline.tagger import AVETagger

    taggers = [n for n, pipe in nlp.pipeline if isinstance(pipe, AVETagger)]
    if name is not None:
        if name not in taggers:
            raise ValueError(f"--tagger: no ave_tagger component named {name!r} (ave_tagger components: {', '.join(taggers) or 'none'})")
        return name
    if not taggers:
        raise ValueError(f"the model has no ave_tagger component (pipeline: {', '.join(nlp.pipe_names) or 'empty'}); select needs the CRF's uncertainty")
    if len(taggers) > 1:
        raise ValueError(f"the model has several ave_tagger components ({', '.join(taggers)}); choose one with --tagger")
    return taggers[0]


def _progress(total: int, progress: Optional[bool], desc: str):
    from tqdm import tqdm

    disable = (total < PROGRESS_MIN or None) if progress is None else not progress
    return tqdm(total=total, unit="texts", desc=desc, file=sys.stderr, disable=disable)


def score_pool(nlp, tagger: str, texts: Sequence[str], batch_size: int = 256, progress: Optional[bool] = None) -> List[Tuple[Any, Uncertainty]]:
    """(annotated doc, uncertainty) per text: one pass of the pipeline, then the tagger's emission layer again (its
    tok2vec listener reuses ``doc.tensor``)."""
    from ..vertical import set_vertical

    pipe = nlp.get_pipe(tagger)
    out: List[Tuple[Any, Uncertainty]] = []
    with _progress(len(texts), progress, "select") as bar:
        for start in range(0, len(texts), batch_size):
            chunk: List[Any] = list(texts[start : start + batch_size])
            if pipe.vertical is not None:  # a head of a joint pipeline: only its own docs get its annotations
                chunk = [nlp.make_doc(text) for text in chunk]
                for doc in chunk:
                    set_vertical(doc, pipe.vertical)
            docs = list(nlp.pipe(chunk, batch_size=batch_size))
            out.extend(zip(docs, tagger_uncertainty(pipe, docs)))
            bar.update(len(chunk))
    return out


def rank_and_choose(
    texts: Sequence[str],
    n: int,
    strategy: str,
    scores: Optional[Sequence[float]] = None,
    seed: int = 0,
    near_duplicate: float = 0.8,
    known: Iterable[str] = (),
    fill: bool = False,
) -> Tuple[List[int], Counter]:
    """Indices of the chosen texts in rank order, and the duplicates skipped by reason. ``scores``: higher = more
    uncertain (needed unless ``strategy`` is random). ``known``: texts already labelled; a candidate duplicating one
    is skipped too. ``fill``: when fewer than ``n`` distinct texts remain, top up with the skipped ones in rank order
    (the simulation keeps the share of titles labelled exact)."""
    order = list(range(len(texts)))
    if strategy == "random":
        random.Random(seed).shuffle(order)
    else:
        if scores is None:
            raise ValueError(f"{strategy}: needs uncertainty scores")
        order.sort(key=lambda i: (-scores[i], i))
    seen = DuplicateFilter(near_duplicate)
    for text in known:
        seen.add(text)
    chosen: List[int] = []
    skipped_idx: List[int] = []
    skipped: Counter = Counter()
    for i in order:
        if len(chosen) >= n:
            break
        reason = seen.check(texts[i])
        if reason is not None:
            skipped[reason] += 1
            skipped_idx.append(i)
            continue
        seen.add(texts[i])
        chosen.append(i)
    if fill and len(chosen) < n:
        chosen += skipped_idx[: n - len(chosen)]
    return chosen, skipped


def _tokens(doc) -> List[Dict[str, Any]]:
    return [{"text": t.text, "start": t.idx, "end": t.idx + len(t.text), "id": t.i, "ws": bool(t.whitespace_)} for t in doc]


def _conf(span) -> Optional[float]:
    value = getattr(span._, "confidence", None)
    return None if value is None else round(float(value), 4)


def spans_jsonl_task(choice: Choice, strategy: str, vertical: Optional[str], model: str) -> Dict[str, Any]:
    """Prodigy-style task: ``spans`` with character offsets, token indices (``token_end`` inclusive, as Prodigy
    writes it), the label and the model's confidence."""
    doc, u = choice.doc, choice.uncertainty
    spans = [
        {"start": s.start_char, "end": s.end_char, "label": s.label_, "token_start": s.start, "token_end": s.end - 1, "confidence": _conf(s)}
        for s in doc.ents
    ]
    meta: Dict[str, Any] = {"id": choice.item.id, "line": choice.item.line, "rank": choice.rank, "strategy": strategy,
                            "least_confidence": round(u.least_confidence, 6), "entropy": round(u.entropy, 6), "model": model}
    if vertical is not None:
        meta["vertical"] = vertical
    return {"text": choice.item.text, "tokens": _tokens(doc), "spans": spans, "meta": meta}


def label_studio_task(choice: Choice, strategy: str, vertical: Optional[str], model: str) -> Dict[str, Any]:
    """Label Studio task: ``data`` (text, id, ranking info) and one prediction whose ``result`` holds one ``labels``
    region per span (``score`` = the span's confidence); the prediction's ``score`` is the Viterbi path's
    probability. Labeling config: ``<Labels name="label" toName="text">`` over ``<Text name="text" value="$text"/>``."""
    doc, u = choice.doc, choice.uncertainty
    result = []
    for k, s in enumerate(doc.ents):
        result.append({
            "id": f"r{choice.rank}-{k}", "from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": s.start_char, "end": s.end_char, "text": s.text, "labels": [s.label_]}, "score": _conf(s),
        })
    data: Dict[str, Any] = {"text": choice.item.text, "id": choice.item.id, "line": choice.item.line, "rank": choice.rank, "strategy": strategy,
                            "least_confidence": round(u.least_confidence, 6), "entropy": round(u.entropy, 6)}
    if vertical is not None:
        data["vertical"] = vertical
    return {"data": data, "predictions": [{"model_version": model, "score": round(u.path_probability, 6), "result": result}]}


def tagger_vertical(nlp, tagger: str) -> Optional[str]:
    return nlp.get_pipe(tagger).vertical or nlp.meta.get("vertical")


def select_texts(
    model: Union[str, Path, Any],
    unlabeled: Union[str, Path],
    output: Union[str, Path],
    n: int,
    strategy: str = "least-confidence",
    text_field: str = "text",
    id_field: str = "id",
    fmt: str = "spans-jsonl",
    near_duplicate: float = 0.8,
    seed: int = 0,
    tagger: Optional[str] = None,
    vertical: Optional[str] = None,
    batch_size: int = 256,
    progress: Optional[bool] = None,
) -> SelectStats:
    """The ``select`` command (see the module docstring); returns the counts for the summary."""
    from ..extract import load_model
    from ..outputs import check_output_file, replaced_on_success

    check_settings(n, strategy, fmt, near_duplicate, batch_size)
    target = check_output_file(output, inputs=[unlabeled])
    items, empty = read_pool(unlabeled, text_field, id_field)
    nlp = model if not isinstance(model, (str, Path)) else load_model(model)
    name = find_tagger(nlp, tagger)
    vertical = vertical or tagger_vertical(nlp, name)
    texts = [item.text for item in items]
    if strategy == "random":
        chosen, skipped = rank_and_choose(texts, n, strategy, seed=seed, near_duplicate=near_duplicate)
        scored = score_pool(nlp, name, [texts[i] for i in chosen], batch_size, progress)
        picked = [(i, *pair) for i, pair in zip(chosen, scored)]
    else:
        scored = score_pool(nlp, name, texts, batch_size, progress)
        chosen, skipped = rank_and_choose(texts, n, strategy, [u.score(strategy) for _, u in scored], seed, near_duplicate)
        picked = [(i, *scored[i]) for i in chosen]
    choices = [Choice(items[i], doc, u, rank) for rank, (i, doc, u) in enumerate(picked, start=1)]
    model_name = str(model) if isinstance(model, (str, Path)) else nlp.meta.get("name", "pipeline")
    make = spans_jsonl_task if fmt == "spans-jsonl" else label_studio_task
    tasks = [make(c, strategy, vertical, model_name) for c in choices]
    with replaced_on_success(target) as handle:
        if fmt == "spans-jsonl":
            for task in tasks:
                handle.write(json.dumps(task, ensure_ascii=False, default=raw_number_as_string) + "\n")
        else:
            handle.write(json.dumps(tasks, ensure_ascii=False, indent=1, default=raw_number_as_string) + "\n")
    return SelectStats(len(items), empty, n, len(choices), skipped, strategy, str(output), fmt)
