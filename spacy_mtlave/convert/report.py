"""Conversion statistics: ``stats.json`` (everything, every problem listed) and ``stats.md`` (tables).

Layout of ``stats.json`` (no timestamps; same input, same bytes)::

    {"sources": {"train"|"test": {"format", "input", "dev_every", "records", "skipped": {reason: n},
                                  "repairs": {repair: n}, "repaired": [{"line", "repair", "detail"}],
                                  "values": {status: n}, "labels": {label: {status: n}},
                                  "spellings": {label: {key: n}}}},
     "verticals": {name: {"folder", "labels", "n_labels", "examples": {"train", "dev", "test"},
                          "examples_per_label": {"max", "min"}, "spans", "values_not_placed",
                          "overlaps_dropped", "values_expanded", "skipped_records",
                          "splits": {split: {"examples", "spans", "examples_without_spans",
                                             "label_examples": {label: n}, "values": {status: n},
                                             "problems": [{"line", "label", "value", "status", "detail"}]}},
                          "skipped": {"train"|"test": {reason: n}}}}}

A train conversion fills the "train" group (splits train and dev), a test conversion the "test"
group; converting into a folder that has stats.json replaces only the group being converted.
"repairs" counts what the JSON reader repaired in the input (``json_input``: duplicate keys merged, lone
surrogates replaced), "repaired" lists each with its line; every skipped record is counted in "skipped".
"""
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from .errors import ConvertError
from .records import (
    ENTRY_SKIPPED,
    EXPANDED,
    NOT_PLACED,
    OVERLAP_DROPPED,
    PLACED,
    STATUSES,
    Record,
)

GROUP_SPLITS = {"train": ("train", "dev"), "test": ("test",)}
SPLITS = ("train", "dev", "test")
FOLDER = re.compile(r"[0-9a-z_]+")  # what vertical.slugify gives: a stats.json naming another folder is not ours


@dataclass
class ConvertReport:
    """The merged statistics (the content of stats.json), the DocBins written by this run and the DocBins it removed
    (left by an earlier conversion of the same group for a vertical that now has no examples)."""

    stats: Dict[str, Any]
    files: List[Path] = field(default_factory=list)
    removed: List[Path] = field(default_factory=list)
    merged: List[Dict[str, Any]] = field(default_factory=list)  # convert --merge-into: one summary per vertical (merge.py)

    def summary(self) -> List[str]:
        """One line per source (records, skipped, repaired) and one per vertical, for the command line."""
        lines = []
        for group, source in self.stats["sources"].items():
            skipped = sum(source["skipped"].values())
            reasons = "; ".join(f"{reason}: {n}" for reason, n in source["skipped"].items())
            repairs = ", ".join(f"{n} {repair}" for repair, n in source.get("repairs", {}).items())
            lines.append(
                f"{group} input {source['input']}: {source['records']} records, {skipped} skipped"
                + (f" ({reasons})" if reasons else "") + (f"; repaired: {repairs}" if repairs else "")
            )
        for name, v in self.stats["verticals"].items():
            examples = ", ".join(f"{split} {n}" for split, n in v["examples"].items() if n)
            lines.append(
                f"{name} -> {v['folder']}/: {examples or 'no examples'}; {v['n_labels']} labels; "
                f"{v['values_not_placed']} values not placed, {v['overlaps_dropped']} overlaps dropped, "
                f"{v['skipped_records']} records skipped"
            )
        if self.merged:
            from .merge import merge_summary

            lines += merge_summary(self.merged)
        return lines


def split_stats(records: Iterable[Record]) -> Dict[str, Any]:
    """Statistics of the docs of one split of one vertical."""
    examples = spans = empty = 0
    label_examples: Counter = Counter()
    values: Counter = Counter()
    problems = []
    for record in records:
        examples += 1
        spans += len(record.doc.ents)
        empty += not record.doc.ents
        label_examples.update({span.label_ for span in record.doc.ents})
        for outcome in record.outcomes:
            values[outcome.status] += 1
            if outcome.status != PLACED:
                problems.append(
                    {"line": outcome.line, "label": outcome.label, "value": outcome.value,
                     "status": outcome.status, "detail": outcome.detail}
                )
    return {
        "examples": examples,
        "spans": spans,
        "examples_without_spans": empty,
        "label_examples": dict(sorted(label_examples.items())),
        "values": {status: values[status] for status in STATUSES},
        "problems": problems,
    }


def source_stats(
    records: List[Record], fmt: str, input_path: Path, dev_every: Optional[int], spellings: Optional[Dict] = None
) -> Dict[str, Any]:
    """Statistics of one input file: records, skipped records by reason, value outcomes per label."""
    skipped = Counter(record.skip for record in records if record.skip is not None)
    repaired = [{"line": record.line, "repair": kind, "detail": detail} for record in records for kind, detail in record.repairs]
    values: Counter = Counter()
    labels: Dict[str, Counter] = {}
    for record in records:
        for outcome in record.outcomes:
            values[outcome.status] += 1
            if outcome.label is not None:
                labels.setdefault(outcome.label, Counter())[outcome.status] += 1
    stats: Dict[str, Any] = {"format": fmt, "input": str(input_path)}
    if dev_every is not None:
        stats["dev_every"] = dev_every
    stats["records"] = len(records)
    stats["skipped"] = dict(sorted(skipped.items()))
    stats["repairs"] = dict(sorted(Counter(item["repair"] for item in repaired).items()))
    stats["repaired"] = repaired
    stats["values"] = {status: values[status] for status in STATUSES}
    stats["labels"] = {
        label: {status: labels[label][status] for status in STATUSES} for label in sorted(labels)
    }
    if spellings is not None:
        stats["spellings"] = spellings
    return stats


def merge(
    old: Optional[Dict[str, Any]], group: str, source: Dict[str, Any], verticals: Dict[str, Dict[str, Any]]
) -> Dict[str, Any]:
    """``old`` stats with ``group`` (train or test) replaced by the new source and vertical splits."""
    sources = dict((old or {}).get("sources", {}))
    sources[group] = source
    merged: Dict[str, Dict[str, Any]] = {}
    for name, vertical in (old or {}).get("verticals", {}).items():
        splits = {s: v for s, v in vertical["splits"].items() if s not in GROUP_SPLITS[group]}
        skipped = {g: v for g, v in vertical["skipped"].items() if g != group}
        if splits or skipped:
            merged[name] = {"folder": vertical["folder"], "splits": splits, "skipped": skipped}
    for name, vertical in verticals.items():
        entry = merged.setdefault(name, {"folder": vertical["folder"], "splits": {}, "skipped": {}})
        entry["folder"] = vertical["folder"]
        entry["splits"].update(vertical["splits"])
        entry["skipped"].update(vertical["skipped"])
    return {
        "sources": {g: sources[g] for g in GROUP_SPLITS if g in sources},
        "verticals": {name: _summarize(merged[name]) for name in sorted(merged)},
    }


def _summarize(vertical: Dict[str, Any]) -> Dict[str, Any]:
    splits = {s: vertical["splits"][s] for s in SPLITS if s in vertical["splits"]}
    labels = sorted({label for split in splits.values() for label in split["label_examples"]})
    training = [splits[s] for s in ("train", "dev") if s in splits] or list(splits.values())
    per_label: Counter = Counter()
    for split in training:
        per_label.update(split["label_examples"])
    values: Counter = Counter()
    for split in splits.values():
        values.update(split["values"])
    return {
        "folder": vertical["folder"],
        "labels": labels,
        "n_labels": len(labels),
        "examples": {s: splits[s]["examples"] if s in splits else 0 for s in SPLITS},
        "examples_per_label": {"max": max(per_label.values(), default=0), "min": min(per_label.values(), default=0)},
        "spans": sum(split["spans"] for split in splits.values()),
        "values_not_placed": values[NOT_PLACED],
        "overlaps_dropped": values[OVERLAP_DROPPED],
        "values_expanded": values[EXPANDED],
        "skipped_records": sum(sum(reasons.values()) for reasons in vertical["skipped"].values()),
        "splits": splits,
        "skipped": {g: vertical["skipped"][g] for g in GROUP_SPLITS if g in vertical["skipped"]},
    }


def load(path: Path, group: str, source: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Existing stats.json, or None; ConvertError when it cannot be read or is not a stats.json written by convert
    (checked by merging ``source`` into it as ``group`` and rendering the result, before any work is done)."""
    if not path.exists():
        return None
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConvertError(f"cannot read ({err.strerror or err})", path) from None
    except (ValueError, RecursionError) as err:
        raise ConvertError(f"cannot merge into malformed statistics: {err}", path) from None
    problem = "cannot merge: not a stats.json written by convert"
    if not isinstance(stats, dict) or not isinstance(stats.get("verticals"), dict):
        raise ConvertError(problem, path)
    try:
        if not all(FOLDER.fullmatch(vertical["folder"]) for vertical in stats["verticals"].values()):
            raise ValueError("a vertical folder that convert does not write")
        to_markdown(merge(stats, group, source, {}))
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as err:
        raise ConvertError(f"{problem} ({type(err).__name__}: {err})", path) from None
    return stats


def rendered(stats: Dict[str, Any]) -> Dict[str, str]:
    """{"stats.json": text, "stats.md": text}."""
    return {"stats.json": json.dumps(stats, indent=2, ensure_ascii=False) + "\n", "stats.md": to_markdown(stats)}


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(stats: Dict[str, Any]) -> str:
    """Sources, a per-vertical table like Table 1 of Jain et al., examples per label, outcomes per label."""
    out = [
        "# Corpus statistics",
        "",
        "## Sources",
        "",
        "| split | format | input | records | skipped | values placed (expanded) | not placed | overlaps dropped "
        "| spec entries skipped | input repairs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for group, source in stats["sources"].items():
        name = group
        if "dev_every" in source:
            every = source["dev_every"]
            name = f"train + dev (i % {every} == {every - 1})" if every else "train (no dev)"
        skipped = "; ".join(f"{reason}: {n}" for reason, n in source["skipped"].items()) or "0"
        repairs = "; ".join(f"{repair}: {n}" for repair, n in source.get("repairs", {}).items()) or "0"
        n = source["values"]
        out.append(
            f"| {name} | {source['format']} | {_cell(source['input'])} | {source['records']} | {_cell(skipped)} "
            f"| {n[PLACED] + n[EXPANDED]} ({n[EXPANDED]}) | {n[NOT_PLACED]} | {n[OVERLAP_DROPPED]} "
            f"| {n[ENTRY_SKIPPED]} | {_cell(repairs)} |"
        )
    out += [
        "",
        "## Verticals",
        "",
        "Examples per label count the train and dev examples holding the label (test when there is no train split).",
        "",
        "| Vertical | folder | # labels | # Examples (Train, Dev, Test) | # Exmpl. / label (max, min) | spans "
        "| values not placed | overlaps dropped | values expanded | skipped records |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    totals: Counter = Counter()
    all_labels = set()
    for name, v in stats["verticals"].items():
        e, p = v["examples"], v["examples_per_label"]
        keys = ("spans", "values_not_placed", "overlaps_dropped", "values_expanded", "skipped_records")
        totals.update({k: v[k] for k in keys})
        totals.update(e)
        all_labels.update(v["labels"])
        out.append(
            f"| {_cell(name)} | {v['folder']} | {v['n_labels']} | {e['train']}, {e['dev']}, {e['test']} "
            f"| {p['max']}, {p['min']} | " + " | ".join(str(v[k]) for k in keys) + " |"
        )
    out.append(
        f"| **total** | | {len(all_labels)} | {totals['train']}, {totals['dev']}, {totals['test']} | "
        f"| {totals['spans']} "
        f"| {totals['values_not_placed']} | {totals['overlaps_dropped']} | {totals['values_expanded']} "
        f"| {totals['skipped_records']} |"
    )
    out += ["", "Every value not placed, dropped or expanded is listed with its input line in stats.json "
            "(`verticals.<name>.splits.<split>.problems`), every input repair in `sources.<split>.repaired`.", "", "## Examples per label", ""]
    for name, v in stats["verticals"].items():
        out += [f"### {_cell(name)}", "", "| label | train | dev | test |", "|---|---|---|---|"]
        for label in v["labels"]:
            counts = [v["splits"].get(s, {}).get("label_examples", {}).get(label, 0) for s in SPLITS]
            out.append(f"| {_cell(label)} | " + " | ".join(map(str, counts)) + " |")
        out.append("")
    for group, source in stats["sources"].items():
        spellings = source.get("spellings", {})
        out += [f"## Values per label ({group} input)", ""]
        head = "| label | placed | expanded | not placed | overlaps dropped | entries skipped |"
        rule = "|---|---|---|---|---|---|"
        out += [head + (" key spellings |" if spellings else ""), rule + ("---|" if spellings else "")]
        for label, counts in sorted(source["labels"].items(), key=lambda item: (-sum(item[1].values()), item[0])):
            row = f"| {_cell(label)} | " + " | ".join(str(counts[status]) for status in STATUSES) + " |"
            if spellings:
                row += " " + _cell(", ".join(f"{k} ({n})" for k, n in spellings.get(label, {}).items())) + " |"
            out.append(row)
        out.append("")
    return "\n".join(out)
