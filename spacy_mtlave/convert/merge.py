"""``convert --merge-into CORPUS_DIR``: add newly annotated docs to the train split of an existing per-vertical corpus.

Every doc of the conversion (train and dev alike) goes to ``CORPUS_DIR/<slug>/train.spacy`` of its vertical, which
must exist (a vertical without one is an error: a misspelt vertical would otherwise start a new corpus), unless its
text is already in that vertical's train split (``already in train``), in its dev or test split (``in dev or test``:
kept out, so nothing leaks into evaluation) or earlier in the same input (``duplicate in input``); texts are compared
as written. The new train.spacy (old docs first, in their order, then the new ones in input order) is written with the
conversion's other files, all moved into place together. ``CORPUS_DIR/stats.json`` is not rewritten: the merge is
reported by the command's summary.
"""
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import DocBin

from ..vertical import get_vertical
from .errors import ConvertError

ALREADY = "already in train"
HELD_OUT = "in dev or test"
DUPLICATE = "duplicate in input"


def _read(path: Path, nlp: Language) -> List:
    try:
        return list(DocBin().from_bytes(path.read_bytes()).get_docs(nlp.vocab))
    except OSError as err:
        raise ConvertError(f"cannot read ({err.strerror or err})", path) from None
    except Exception as err:  # a corrupted or foreign file: DocBin raises many kinds
        raise ConvertError(f"not a readable .spacy file ({type(err).__name__})", path) from None


def check_merge_target(merge_into: Path, output_dir: Path, split: str) -> None:
    if split != "train":
        raise ConvertError("adds to train splits; convert with --split train", field="--merge-into")
    if not merge_into.is_dir():
        raise ConvertError("not a corpus folder" if merge_into.exists() else "corpus folder not found", merge_into)
    if output_dir.exists() and merge_into.resolve() == output_dir.resolve():
        raise ConvertError("must differ from OUTPUT_DIR (OUTPUT_DIR gets the new annotations alone)", field="--merge-into")


def plan_merge(merge_into: Path, groups: Dict[str, tuple], nlp: Language) -> Tuple[List[Tuple[Path, bytes]], List[Dict]]:
    """(files to write, one summary per vertical) for ``groups`` (vertical -> (slug, records, skipped), as grouped
    by ``convert``)."""
    writes: List[Tuple[Path, bytes]] = []
    summaries: List[Dict] = []
    for name, (slug, records, _) in groups.items():
        if not records:
            continue
        target = merge_into / slug / "train.spacy"
        if not target.is_file():
            raise ConvertError(f"no train.spacy of vertical {name!r} to merge into", target)
        old = _read(target, nlp)
        for doc in old:
            other: Optional[str] = get_vertical(doc)
            if other is not None and other != name:
                raise ConvertError(f"holds docs of vertical {other!r}, not {name!r}", target)
        in_train = {doc.text for doc in old}
        held_out = set()
        for part in ("dev", "test"):
            path = merge_into / slug / f"{part}.spacy"
            if path.is_file():
                held_out |= {doc.text for doc in _read(path, nlp)}
        counts = {ALREADY: 0, HELD_OUT: 0, DUPLICATE: 0}
        added, seen = [], set()
        for record in records:
            text = record.doc.text
            reason = ALREADY if text in in_train else HELD_OUT if text in held_out else DUPLICATE if text in seen else None
            if reason is not None:
                counts[reason] += 1
                continue
            seen.add(text)
            added.append(record.doc)
        writes.append((target, DocBin(store_user_data=True, docs=old + added).to_bytes()))
        summaries.append({"vertical": name, "target": str(target), "before": len(old), "added": len(added), "skipped": counts})
    return writes, summaries


def merge_summary(summaries: List[Dict]) -> List[str]:
    lines = []
    for s in summaries:
        skipped = ", ".join(f"{n} {reason}" for reason, n in s["skipped"].items() if n)
        lines.append(f"merged into {s['target']}: {s['before']} -> {s['before'] + s['added']} docs ({s['added']} added" + (f"; skipped {skipped}" if skipped else "") + ")")
    return lines
