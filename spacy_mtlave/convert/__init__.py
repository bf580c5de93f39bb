"""Catalog data in four formats -> per-vertical spaCy corpora with statistics.

``convert(INPUT, OUTPUT_DIR, fmt)`` writes ``OUTPUT_DIR/<slug>/{train,dev}.spacy`` (split "train") or
``OUTPUT_DIR/<slug>/test.spacy`` (split "test"), one folder per vertical (``vertical.slugify``), and
``OUTPUT_DIR/stats.json`` / ``stats.md``. Docs use the reference tokenizer (``spacy.blank("en")``), gold
spans are ``doc.ents`` (labels = attribute names as written), the vertical is ``doc._.vertical``.
Same input, same bytes: no timestamps, input order kept.

Dev split: within each vertical, in input order, example ``i`` (0-based) is dev when
``i % dev_every == dev_every - 1`` (10 gives BENCHMARK.md's rule); ``dev_every=0`` writes no dev.spacy
(and removes a stale one).
"""
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import spacy
from spacy.language import Language
from spacy.tokens import DocBin

from ..vertical import slugify
from . import report
from .attribute_values import read_attribute_values
from .conll import read_conll
from .errors import ConvertError
from .mave import read_mave
from .records import Record
from .report import ConvertReport
from .specs import read_specs

__all__ = ["convert", "ConvertError", "ConvertReport", "FORMATS"]

FORMATS = ("attribute-values", "mave", "conll", "specs")
DEFAULT_TEXT_FIELDS = {"attribute-values": ("input",), "specs": ("product_name", "description")}


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
) -> ConvertReport:
    """Convert ``input_path`` (format ``fmt``) into per-vertical DocBins under ``output_dir``.

    text_fields: fields joined by "\\n" (attribute-values: ["input"]; specs: ["product_name", "description"]).
    vertical_field: the field naming the vertical (default "category"); ``vertical`` overrides it for
        every record. category_depth: read the field as a category path ("A >> B >> C") and keep that
        many levels. spec_field: the specification field of the specs format
        (default "product_specifications").
    Raises ConvertError on structural errors; per-record problems are counted in the report.
    """
    input_path, output_dir = Path(input_path), Path(output_dir)
    _check_options(fmt, split, dev_every, text_fields, vertical_field, category_depth, spec_field)
    nlp = reference_nlp()
    fields = tuple(text_fields) if text_fields is not None else DEFAULT_TEXT_FIELDS.get(fmt, ())
    where = {"vertical_field": vertical_field or "category", "vertical": vertical, "category_depth": category_depth}
    spellings = None
    if fmt == "attribute-values":
        records = list(read_attribute_values(input_path, nlp, fields, **where))
    elif fmt == "mave":
        records = list(read_mave(input_path, nlp, **where))
    elif fmt == "conll":
        records = list(read_conll(input_path, nlp, vertical))
    else:
        records, spellings = read_specs(input_path, nlp, fields, spec_field or "product_specifications", **where)
    by_vertical = _group(records, input_path)
    files: List[Path] = []
    verticals = {}
    for name, (slug, docs, skipped) in by_vertical.items():
        splits = _split(docs, split, dev_every)
        if docs:
            files += _write(output_dir / slug, splits, split, dev_every)
        verticals[name] = {
            "folder": slug,
            "splits": {s: report.split_stats(rs) for s, rs in splits.items()},
            "skipped": {split: dict(sorted(skipped.items()))} if skipped else {},
        }
    source = report.source_stats(records, fmt, input_path, dev_every if split == "train" else None, spellings)
    output_dir.mkdir(parents=True, exist_ok=True)
    stats = report.merge(report.load(output_dir / "stats.json"), split, source, verticals)
    report.write(output_dir, stats)
    return ConvertReport(stats, files)


@lru_cache(maxsize=1)
def reference_nlp() -> Language:
    """The reference tokenizer's pipeline, ``spacy.blank("en")``, loaded once per process."""
    return spacy.blank("en")


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
            if not slug:
                raise ConvertError(f"vertical {record.vertical!r} gives an empty folder name", input_path, record.line)
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


def _split(records: List[Record], split: str, dev_every: int) -> Dict[str, List[Record]]:
    if split == "test":
        return {"test": records}
    if dev_every == 0:
        return {"train": records}
    splits: Dict[str, List[Record]] = {"train": [], "dev": []}
    for i, record in enumerate(records):
        splits["dev" if i % dev_every == dev_every - 1 else "train"].append(record)
    return splits


def _write(folder: Path, splits: Dict[str, List[Record]], split: str, dev_every: int) -> List[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, records in splits.items():
        docbin = DocBin(store_user_data=True, docs=[record.doc for record in records])
        path = folder / f"{name}.spacy"
        docbin.to_disk(path)
        written.append(path)
    if split == "train" and dev_every == 0:
        (folder / "dev.spacy").unlink(missing_ok=True)
    return written
