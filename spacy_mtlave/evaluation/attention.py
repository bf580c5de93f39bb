"""Figure 4 of the report: the coupling's label-label attention of pair and group runs (``attention.json``, or
``attention/<a>+<b>.json`` per coupled pair of a ``train-group`` run), averaged over seeds, as heatmaps with the top
pairs and an alignment score."""
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
import srsly

from ..bio import tag_attribute
from ..training.run_info import PAIR_SYSTEMS, Run
from ..vertical import slugify

TERMS = (("context_12", "CCE", "context", 0), ("context_21", "CCE'", "context", 1),
         ("label_12", "LCE", "label", 0), ("label_21", "LCE'", "label", 1))


def average_attention(attentions: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Element-wise mean of the matrices of several ``attention.json`` of one pair; ValueError when their
    verticals or tags differ."""
    first = attentions[0]
    for other in attentions[1:]:
        for key in ("verticals", "tags1", "tags2"):
            if other[key] != first[key]:
                raise ValueError(f"attention.json: {key} differ between runs of one pair ({first[key]} vs {other[key]})")
    out = {key: first[key] for key in ("verticals", "tags1", "tags2")}
    for key, *_ in TERMS:
        out[key] = numpy.mean([numpy.asarray(a[key], dtype="float64") for a in attentions], axis=0)
    return out


def normalise_rows(matrix: numpy.ndarray) -> numpy.ndarray:
    """Each row divided by its sum (the share of the anchor tag's attention per partner tag); zero rows stay 0."""
    matrix = numpy.asarray(matrix, dtype="float64")
    sums = matrix.sum(axis=1, keepdims=True)
    return numpy.divide(matrix, sums, out=numpy.zeros_like(matrix), where=sums > 0)


def _attribute(tag: str) -> Optional[str]:
    attribute = tag_attribute(tag)
    return None if attribute is None else attribute.lower()


def label_level(matrix: numpy.ndarray, anchor_tags: Sequence[str], partner_tags: Sequence[str]) -> Tuple[List[str], List[str], numpy.ndarray]:
    """Attribute x attribute attention [n_anchor_attrs, n_partner_attrs] (lower-cased names, B-/I- merged, ``O``
    dropped): per anchor attribute, the mean of its tags' non-empty normalised rows, summed over each partner
    attribute's tags."""
    norm = normalise_rows(matrix)
    anchors = sorted({a for a in map(_attribute, anchor_tags) if a})
    partners = sorted({a for a in map(_attribute, partner_tags) if a})
    columns = numpy.zeros((len(partner_tags), len(partners)))
    for j, tag in enumerate(partner_tags):
        if _attribute(tag):
            columns[j, partners.index(_attribute(tag))] = 1.0
    out = numpy.zeros((len(anchors), len(partners)))
    for i, name in enumerate(anchors):
        rows = [norm[k] for k, tag in enumerate(anchor_tags) if _attribute(tag) == name and norm[k].sum() > 0]
        if rows:
            out[i] = numpy.mean(rows, axis=0) @ columns
    return anchors, partners, out


def alignment_score(matrix: numpy.ndarray, anchor_tags: Sequence[str], partner_tags: Sequence[str]) -> Dict[str, Any]:
    """Among attributes named in both tag sets (case-insensitive, B-/I- stripped) with any attention, the share
    whose most-attended partner attribute (``label_level``) is the same-named one."""
    anchors, partners, attr = label_level(matrix, anchor_tags, partner_tags)
    shared = sorted(set(anchors) & set(partners))
    hits, evaluated, best = [], [], {}
    for name in shared:
        row = attr[anchors.index(name)]
        if row.sum() <= 0:
            continue
        evaluated.append(name)
        best[name] = partners[int(numpy.argmax(row))]
        if row[partners.index(name)] >= row.max():
            hits.append(name)
    return {"score": len(hits) / len(evaluated) if evaluated else None, "n_shared": len(shared), "n_evaluated": len(evaluated),
            "aligned": hits, "best_partner": best}


def top_pairs(matrix: numpy.ndarray, anchor_tags: Sequence[str], partner_tags: Sequence[str], k: int = 10) -> List[Dict[str, Any]]:
    """The ``k`` (anchor tag, partner tag) pairs of highest mean attention, ``O`` left out."""
    matrix = numpy.asarray(matrix, dtype="float64")
    pairs = [(matrix[i, j], a, p) for i, a in enumerate(anchor_tags) for j, p in enumerate(partner_tags)
             if a != "O" and p != "O" and matrix[i, j] > 0]
    return [{"anchor": a, "partner": p, "attention": float(v)} for v, a, p in sorted(pairs, key=lambda x: (-x[0], x[1], x[2]))[:k]]


def plot_attention(attention: Dict[str, Any], path: Path, title: str) -> Path:
    """A 2 x 2 heatmap PNG (context CCE/CCE', label LCE/LCE'), each row normalised over the partner's tags."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state

    v1, v2 = attention["verticals"]
    tags = (attention["tags1"], attention["tags2"])
    n = max(len(t) for t in tags)
    size = max(6.0, 0.28 * n + 3.0)
    fig = Figure(figsize=(2 * size + 2, 2 * size + 1), layout="constrained")
    axes = fig.subplots(2, 2)
    fontsize = max(5, min(9, int(220 / max(n, 1))))
    for ax, (key, term, kind, side) in zip(axes.T.flat, TERMS):
        rows, cols = tags[side], tags[1 - side]
        shares = normalise_rows(attention[key])
        image = ax.imshow(shares, cmap="viridis", vmin=0.0, vmax=max(float(shares.max()), 1e-9), aspect="auto")
        ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=fontsize)
        ax.set_yticks(range(len(rows)), rows, fontsize=fontsize)
        ax.set_xlabel(f"{(v1, v2)[1 - side]} tags (lender)")
        ax.set_ylabel(f"{(v1, v2)[side]} tags (borrower)")
        ax.set_title(f"{term}: {kind} attention, {(v1, v2)[side]} → {(v1, v2)[1 - side]}")
        fig.colorbar(image, ax=ax, shrink=0.8, label="share of row attention")
    fig.suptitle(title)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return Path(path)


def attention_files(run: Run) -> List[Path]:
    """The label-label attention files of a run: ``attention.json`` of a pair run, ``attention/*.json`` (one per
    coupled pair of verticals) of a group run; none for a single-task run."""
    if run.kind == "pair":
        return [run.path / "attention.json"] if (run.path / "attention.json").is_file() else []
    if run.kind == "group":
        return sorted((run.path / "attention").glob("*+*.json"))
    return []


def figure4(runs: Sequence[Run], output_dir: Path, top_k: int = 10) -> List[Dict[str, Any]]:
    """Per pair of verticals and system (not "none": its attention is not trained; pair and group runs alike), the
    seed-averaged attention:
    heatmap ``attention_<v1>_<v2>.png`` (full coupling; other modes get a ``_<mode>`` suffix), top pairs and
    alignment per term."""
    groups: Dict[Tuple[Tuple[str, ...], str], List[Path]] = {}
    seeds_of: Dict[Tuple[Tuple[str, ...], str], List[Tuple[int, Run]]] = {}
    for run in runs:
        if run.coupling == "none":
            continue
        for path in attention_files(run):
            verticals = tuple(srsly.read_json(path)["verticals"])
            groups.setdefault((verticals, run.system), []).append(path)
            seeds_of.setdefault((verticals, run.system), []).append((run.seed, run))
    figures = []
    for (verticals, system), paths in sorted(groups.items()):
        group = [run for _, run in seeds_of[(verticals, system)]]
        attention = average_attention([srsly.read_json(path) for path in paths])
        suffix = "" if system == PAIR_SYSTEMS["full"] else "_" + slugify(system.replace(PAIR_SYSTEMS["full"], "full"))
        name = f"attention_{slugify(verticals[0])}_{slugify(verticals[1])}{suffix}"
        seeds = sorted(r.seed for r in group)
        title = f"{verticals[0]} + {verticals[1]} ({system}, {len(seeds)} seed(s)): label-label attention, rows normalised"
        plot_attention(attention, Path(output_dir) / f"{name}.png", title)
        tags = (attention["tags1"], attention["tags2"])
        terms = {}
        for key, term, kind, side in TERMS:
            terms[term] = {
                "key": key, "kind": kind, "anchor": verticals[side], "partner": verticals[1 - side],
                "alignment": alignment_score(attention[key], tags[side], tags[1 - side]),
                "top_pairs": top_pairs(attention[key], tags[side], tags[1 - side], top_k),
            }
        figures.append({"verticals": list(verticals), "system": system, "seeds": seeds,
                        "runs": [str(r.path) for r in group], "png": f"{name}.png", "terms": terms})
    return figures


def figure4_markdown(figure: Dict[str, Any]) -> str:
    v1, v2 = figure["verticals"]
    lines = [f"### {v1} + {v2}: {figure['system']} (seeds {', '.join(map(str, figure['seeds']))})", "",
             f"![{v1} + {v2} label-label attention]({figure['png']})", "",
             "Alignment (attributes named in both verticals whose most-attended partner is the same-named one):", ""]
    for term, info in figure["terms"].items():
        a = info["alignment"]
        score = "n/a" if a["score"] is None else f"{100 * a['score']:.0f}%"
        lines.append(f"- {term} ({info['kind']}, {info['anchor']} → {info['partner']}): {score} "
                     f"({len(a['aligned'])} of the {a['n_evaluated']} shared names with any attention; {a['n_shared']} shared)")
    for term, info in figure["terms"].items():
        lines += ["", f"Top pairs, {term} ({info['anchor']} borrower → {info['partner']} lender, mean attention):", ""]
        lines += [f"- {p['anchor']} → {p['partner']} ({p['attention']:.3f})" for p in info["top_pairs"]] or ["- none"]
    return "\n".join(lines)


