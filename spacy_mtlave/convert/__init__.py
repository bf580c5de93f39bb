"""Catalog data in four formats -> per-vertical spaCy corpora with statistics.

``convert(INPUT, OUTPUT_DIR, fmt)`` writes ``OUTPUT_DIR/<slug>/{train,dev}.spacy`` (split "train") or
``OUTPUT_DIR/<slug>/test.spacy`` (split "test"), one folder per vertical (``vertical.slugify``), and
``OUTPUT_DIR/stats.json`` / ``stats.md``. Docs use the reference tokenizer (``spacy.blank("en")``), gold
spans are ``doc.ents`` (labels = attribute names as written), the vertical is ``doc._.vertical``.
Same input, same bytes: no timestamps, input order kept.

Nothing is lost without a count: structural errors (malformed JSON, a missing field, bad offsets, a
stats.json convert did not write, an output that cannot be written) raise ConvertError before
anything is written; skipped records and input repairs are counted in the statistics. All files are
first written to temporary files next to their targets and moved into place together at the end
(``outputs.StagedFiles``). Re-converting a group (train or test) replaces it: the group's DocBins
left in the folder of a vertical that no longer has examples in it are removed (and reported).

Dev split: within each vertical, in input order, example ``i`` (0-based) is dev when
``i % dev_every == dev_every - 1`` (10 gives BENCHMARK.md's rule); ``dev_every=0`` writes no dev.spacy
(and removes a stale one).
"""
import os
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Union

import spacy
from spacy.language import Language
from spacy.tokens import DocBin

from ..outputs import StagedFiles
from ..vertical import slugify
from . import report
from .attribute_values import read_attribute_values
from .conll import read_conll
from .errors import ConvertError
from .mave import read_mave
from .records import Record
from .report import ConvertReport
from .specs import read_specs
from .label_studio import read_label_studio
from .merge import check_merge_target, plan_merge
from .spans_jsonl import read_spans_jsonl

__all__ = ["convert", "ConvertError", "ConvertReport", "FORMATS"]

FORMATS = ("attribute-values", "mave", "conll", "specs", "spans-jsonl", "label-studio")
DEFAULT_TEXT_FIELDS = {"attribute-values": ("input",), "specs": ("product_name", "description"), "spans-jsonl": ("text",), "label-studio": ("text",)}


def convert(
    input_path: Union[str, Path],
    output_dir: Union[str, Path],
    fmt: str,
    split: str = "train",
    dev_every: int = 10,
    text_fields: Optional[Sequence[str]] = None,
    vertical_field: Optional[str] = None,
    vertical: Optional[str] = None,
    category_depth: Optional[int] = None,
    spec_field: Optional[str] = None,
    tokenizer: str = "default",
    merge_into: Optional[Union[str, Path]] = None,
) -> ConvertReport:
    """Convert ``input_path`` (format ``fmt``) into per-vertical DocBins under ``output_dir``.

    text_fields: fields joined by "\\n" (attribute-values: ["input"]; specs: ["product_name", "description"]).
    vertical_field: the field naming the vertical (default "category"); ``vertical`` overrides it for
        every record. category_depth: read the field as a category path ("A >> B >> C") and keep that
        many levels. spec_field: the specification field of the specs format
        (default "product_specifications"). tokenizer: ``default`` (the benchmark's reference tokens) or
        ``product`` (``spacy_mtlave.product_tokenizer.v1``: values glued to their neighbours can be placed).
    merge_into: also add every converted doc to ``MERGE_INTO/<slug>/train.spacy`` (``merge.py``: texts already
        in that vertical's train, dev or test split are skipped and counted).
    Raises ConvertError on structural errors; per-record problems are counted in the report.
    """
    input_path, output_dir = Path(input_path), Path(output_dir)
    _check_options(fmt, split, dev_every, text_fields, vertical_field, category_depth, spec_field)
    _check_output_dir(output_dir)
    if merge_into is not None:
        check_merge_target(Path(merge_into), output_dir, split)
    dev = dev_every if split == "train" else None
    old = report.load(output_dir / "stats.json", split, report.source_stats([], fmt, input_path, dev))
    if tokenizer not in TOKENIZERS:
        raise ConvertError(f"unknown tokenizer {tokenizer!r}; expected one of: {', '.join(TOKENIZERS)}", field="--tokenizer")
    nlp = reference_nlp(tokenizer)
    fields = tuple(text_fields) if text_fields is not None else DEFAULT_TEXT_FIELDS.get(fmt, ())
    where = {"vertical_field": vertical_field or "category", "vertical": vertical, "category_depth": category_depth}
    spellings = None
    if fmt == "attribute-values":
        records = list(read_attribute_values(input_path, nlp, fields, **where))
    elif fmt == "mave":
        records = list(read_mave(input_path, nlp, **where))
    elif fmt == "conll":
        records = list(read_conll(input_path, nlp, vertical))
    elif fmt in ("spans-jsonl", "label-studio"):
        reader = read_spans_jsonl if fmt == "spans-jsonl" else read_label_studio
        records = list(reader(input_path, nlp, fields, vertical_field, vertical, category_depth))
    else:
        records, spellings = read_specs(input_path, nlp, fields, spec_field or "product_specifications", **where)
    by_vertical = _group(records, input_path)
    merges, merged = plan_merge(Path(merge_into), by_vertical, nlp) if merge_into is not None else ([], [])
    verticals = {}
    try:
        with StagedFiles() as staged:
            for name, (slug, docs, skipped) in by_vertical.items():
                splits = _split(docs, split, dev_every)
                if docs:
                    for part, part_records in splits.items():
                        docbin = DocBin(store_user_data=True, docs=[record.doc for record in part_records])
                        staged.write(output_dir / slug / f"{part}.spacy", docbin.to_bytes())
                verticals[name] = {
                    "folder": slug,
                    "splits": {s: report.split_stats(rs) for s, rs in splits.items()},
                    "skipped": {split: dict(sorted(skipped.items()))} if skipped else {},
                }
            source = report.source_stats(records, fmt, input_path, dev, spellings)
            stats = report.merge(old, split, source, verticals)
            for name, text in report.rendered(stats).items():
                staged.write(output_dir / name, text.encode("utf-8"))
            for path, data in merges:
                staged.write(path, data)
            files = staged.commit()
    except ValueError as err:
        raise (err if isinstance(err, ConvertError) else ConvertError(str(err))) from None
    merged_files = {path for path, _ in merges}
    docbins = [path for path in files if path.suffix == ".spacy" and path not in merged_files]
    folders = {v["folder"] for v in (old or {}).get("verticals", {}).values()} | {v["folder"] for v in verticals.values()}
    return ConvertReport(stats, docbins, _remove_stale(output_dir, folders, report.GROUP_SPLITS[split], set(docbins)), merged)


def _check_output_dir(output_dir: Path) -> None:
    """ConvertError before any work when OUTPUT_DIR (or the nearest folder above it that exists) is a file or cannot
    be written."""
    for path in (output_dir, *output_dir.parents):
        if path.exists():
            if not path.is_dir():
                raise ConvertError("is a file, expected the output folder" if path == output_dir else "is a file, not a folder", path)
            if not os.access(path, os.W_OK | os.X_OK):
                raise ConvertError("folder is not writable", path)
            return


def _remove_stale(output_dir: Path, folders: Set[str], splits: Sequence[str], written: Set[Path]) -> List[Path]:
    """Remove the ``splits`` DocBins in ``folders`` that this run did not write (an earlier conversion's, of a vertical
    now without examples, or dev.spacy with --dev-every 0), then the folders left empty; returns the removed files."""
    removed = []
    for folder in sorted(folders):
        for part in splits:
            path = output_dir / folder / f"{part}.spacy"
            if path not in written and path.is_file():
                try:
                    path.unlink()
                except OSError as err:
                    raise ConvertError(f"cannot remove this DocBin of an earlier conversion ({err.strerror or err})", path) from None
                removed.append(path)
        if (output_dir / folder).is_dir() and not any((output_dir / folder).iterdir()):
            (output_dir / folder).rmdir()
    return removed


TOKENIZERS = ("default", "product")


@lru_cache(maxsize=2)
def reference_nlp(tokenizer: str = "default") -> Language:
    """The tokenizer's pipeline, loaded once per process: ``default``, the benchmark's reference tokens
    (``spacy.blank("en")``), or ``product``, the same with ``spacy_mtlave.product_tokenizer.v1``'s extra splits."""
    nlp = spacy.blank("en")
    if tokenizer == "product":
        from ..pipeline.product_tokenizer import product_tokenizer

        nlp.tokenizer = product_tokenizer(nlp)
    return nlp


def _check_options(fmt, split, dev_every, text_fields, vertical_field, category_depth, spec_field) -> None:
    if fmt not in FORMATS:
        raise ConvertError(f"unknown format {fmt!r}; expected one of: {', '.join(FORMATS)}", field="--format")
    if split not in ("train", "test"):
        raise ConvertError(f"unknown split {split!r}; expected train or test", field="--split")
    if dev_every < 0:
        raise ConvertError(f"must be 0 (no dev split) or positive, got {dev_every}", field="--dev-every")
    if category_depth is not None and category_depth < 1:
        raise ConvertError(f"must be at least 1, got {category_depth}", field="--category-depth")
    if text_fields is not None and (fmt not in DEFAULT_TEXT_FIELDS or not text_fields or not all(text_fields)):
        raise ConvertError("applies to attribute-values and specs, and needs field names", field="--text-fields")
    if fmt == "conll" and (vertical_field is not None or category_depth is not None):
        problem = "conll takes the vertical from --vertical or '# vertical = X' lines"
        raise ConvertError(problem, field="--vertical-field")
    if spec_field is not None and fmt != "specs":
        raise ConvertError("applies to the specs format only", field="--spec-field")


def _group(records: List[Record], input_path: Path) -> Dict[str, tuple]:
    """vertical -> (slug, its docs' records in input order, {skip reason: count})."""
    groups: Dict[str, tuple] = {}
    slugs: Dict[str, str] = {}
    for record in records:
        if record.vertical is None:
            continue
        if record.vertical not in groups:
            slug = slugify(record.vertical)
            if slug in slugs:
                problem = f"verticals {slugs[slug]!r} and {record.vertical!r} share the folder {slug!r}"
                raise ConvertError(problem, input_path, record.line)
            slugs[slug] = record.vertical
            groups[record.vertical] = (slug, [], {})
        _, docs, skipped = groups[record.vertical]
        if record.doc is not None:
            docs.append(record)
        else:
            skipped[record.skip] = skipped.get(record.skip, 0) + 1
    return groups


def is_dev_index(index: int, dev_every: int) -> bool:
    """Whether a vertical's ``index``-th training example (0-based, file order) is a dev example: BENCHMARK.md's rule
    ``index % dev_every == dev_every - 1`` (``dev_every`` 0: no dev split)."""
    return dev_every > 0 and index % dev_every == dev_every - 1


def _split(records: List[Record], split: str, dev_every: int) -> Dict[str, List[Record]]:
    if split == "test":
        return {"test": records}
    if dev_every == 0:
        return {"train": records}
    splits: Dict[str, List[Record]] = {"train": [], "dev": []}
    for i, record in enumerate(records):
        splits["dev" if is_dev_index(i, dev_every) else "train"].append(record)
    return splits
