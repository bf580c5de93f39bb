"""``extract --engine ray``: catalog-scale extraction with Ray Data, embedded on one machine or on a Ray cluster.

The driver lists the input files (a file, a directory or a glob; local paths or any URI pyarrow's filesystems read,
e.g. ``s3://``), checks them (Parquet: the text column exists and holds strings) and cuts them into **pieces** of
``batch_size`` records that know their file and first row: JSONL by line offsets (one scan of the file), Parquet by
row group metadata. ``ray.data.from_items(pieces).map_batches(Annotator, compute=ActorPoolStrategy(size=workers))``
then runs a pool of stateful actors: each loads the pipeline once (torch on one thread), reads its pieces, turns every
line or row into an output record with the local engine's functions (:func:`~spacy_mtlave.extract.parse_line`,
:func:`~spacy_mtlave.extract.check_record`, :func:`~spacy_mtlave.extract.annotate`) and writes one part file per
piece (``part-000042.jsonl`` or ``.parquet``; the record plus ``file`` and ``row``), returning only counts.

Why not ``read_json``/``read_parquet``: pyarrow's JSON reader fails a whole block on one bad line and neither gives
row numbers; here a bad line is an error record as in the local engine, and every record names its file and row.

Exactly once: a part file is written to a temporary name and renamed, and its name depends only on the piece, so a
piece retried after its worker died (Ray restarts the actor and retries its task) replaces, never duplicates. The
driver checks that every piece was written and that records out = records in, then moves the output folder (written
as a temporary folder next to it) into place with a ``_SUCCESS`` file holding the summary.
"""
import glob
import io
import json
import os
import resource
import shutil
import socket
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from . import catalog_io
from .extract import annotate, check_record, check_settings, dumps_record, parse_line
from .outputs import replaced_on_success, temporary_path

SUCCESS = "_SUCCESS"
KILL_HOOK = "SPACY_MTLAVE_TEST_KILL_WORKER"  # tests: "N:MARKER", the first worker to create MARKER dies in piece N+1
MODEL_CACHE = "spacy_mtlave_models"
PART_ROWS = 4096


@dataclass
class RayExtractStats:
    records_in: int = 0
    records_out: int = 0
    errors: int = 0
    words: int = 0
    numbers_as_strings: int = 0
    parts: int = 0
    workers: int = 0
    seconds: float = 0.0
    max_rss_mb: float = 0.0  # the largest peak memory of a worker actor
    worker_pids: List[int] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.words / self.seconds if self.seconds > 0 else 0.0
        line = (f"{self.records_in} records in, {self.records_out} out, {self.errors} errors, {rate:.0f} words/s, "
                f"{self.seconds:.1f} s wall time ({self.workers} workers, {self.parts} part files)")
        if self.numbers_as_strings:
            line += f"; {self.numbers_as_strings} id numbers that JSON cannot hold written as strings"
        return line


# inputs -----------------------------------------------------------------------------------------------------------


def _filesystem(path: str):
    """(pyarrow filesystem, path in it): a URI (``s3://...``) by pyarrow, anything else a local path."""
    from pyarrow import fs

    if "://" in path and not path.startswith("file://"):
        try:
            return fs.FileSystem.from_uri(path)
        except Exception as err:  # pyarrow raises several kinds for an unknown scheme or a bad URI
            raise ValueError(f"{path}: cannot open ({str(err).splitlines()[0]})") from None
    return fs.LocalFileSystem(), os.path.abspath(path[len("file://"):] if path.startswith("file://") else path)


def _catalog_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return not name.startswith((".", "_")) and name.lower().endswith(catalog_io.PARQUET_SUFFIXES + catalog_io.JSONL_SUFFIXES)


def list_inputs(path: str) -> Tuple[Any, List[str]]:
    """(filesystem, sorted input files) of a file, a directory (its JSONL and Parquet files, recursively, hidden and
    ``_`` files left out) or a glob; ValueError (one line) when nothing is found."""
    from pyarrow import fs as pafs

    filesystem, base = _filesystem(str(path))
    if any(c in base for c in "*?[") and isinstance(filesystem, pafs.LocalFileSystem):
        files = sorted(p for p in glob.glob(base, recursive=True) if os.path.isfile(p))
        if not files:
            raise ValueError(f"{path}: no input file matches")
        return filesystem, files
    info = filesystem.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        raise ValueError(f"{path}: input not found")
    if info.type == pafs.FileType.File:
        return filesystem, [base]
    found = filesystem.get_file_info(pafs.FileSelector(base, recursive=True))
    files = sorted(i.path for i in found if i.type == pafs.FileType.File and _catalog_file(i.path))
    if not files:
        raise ValueError(f"{path}: no .jsonl or .parquet files in the directory")
    return filesystem, files


def jsonl_pieces(filesystem, path: str, rows: int, chunk: int = 1 << 24) -> List[Dict[str, Any]]:
    """Pieces of ``rows`` lines of a JSONL file: byte ranges that start at a line start, with their first line
    number (lines end at b"\\n" only, as when the local engine iterates the file)."""
    import numpy

    pieces, starts, offset, lines, last = [], [0], 0, 0, b""
    with filesystem.open_input_stream(path) as source:
        while True:
            data = source.read(chunk)
            if not data:
                break
            ends = numpy.flatnonzero(numpy.frombuffer(data, dtype=numpy.uint8) == 10)
            for k in range(rows - lines % rows - 1, len(ends), rows):  # the newline ending every rows-th line
                starts.append(offset + int(ends[k]) + 1)
            lines += len(ends)
            offset += len(data)
            last = data[-1:]
    total = lines + (1 if offset and last != b"\n" else 0)  # a last line without newline is a line too
    if starts[-1] >= offset:
        starts.pop()
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else offset
        pieces.append({"file": path, "format": "jsonl", "first_row": i * rows + 1, "rows": min(rows, total - i * rows),
                       "start": start, "stop": stop, "row_group": -1})
    return pieces


def parquet_pieces(filesystem, path: str, rows: int, text_field: str) -> List[Dict[str, Any]]:
    """Pieces of at most ``rows`` rows of a Parquet file, inside one row group each; the text column is checked."""
    parquet = catalog_io.open_parquet(path, text_field, filesystem=filesystem)
    pieces, first = [], 1
    for group in range(parquet.metadata.num_row_groups):
        n = parquet.metadata.row_group(group).num_rows
        for start in range(0, n, rows):
            pieces.append({"file": path, "format": "parquet", "first_row": first + start, "rows": min(rows, n - start),
                           "start": start, "stop": min(n, start + rows), "row_group": group})
        first += n
    return pieces


def plan_pieces(path: str, rows: int, text_field: str) -> Tuple[Any, List[Dict[str, Any]]]:
    """(filesystem, pieces of every input file, numbered ``piece``); ValueError (one line) for a bad input."""
    filesystem, files = list_inputs(path)
    pieces: List[Dict[str, Any]] = []
    for name in files:
        try:
            if catalog_io.input_format(name) == "parquet":
                pieces += parquet_pieces(filesystem, name, rows, text_field)
            else:
                pieces += jsonl_pieces(filesystem, name, rows)
        except OSError as err:
            raise ValueError(f"{name}: cannot read ({err.strerror or str(err).splitlines()[0]})") from None
    for number, piece in enumerate(pieces):
        piece["piece"] = number
    return filesystem, pieces


# the worker actor -------------------------------------------------------------------------------------------------


def unpack_model(archive: bytes) -> str:
    """A shipped pipeline folder unpacked once per machine (into the temporary folder, by its content's hash)."""
    import hashlib

    folder = Path(tempfile.gettempdir()) / MODEL_CACHE / hashlib.sha256(archive).hexdigest()[:16]
    if not folder.is_dir():
        staging = Path(tempfile.mkdtemp(dir=folder.parent if folder.parent.is_dir() else None))
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(staging, filter="data")
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(staging, folder)
        except OSError:  # another worker of this machine was first
            shutil.rmtree(staging, ignore_errors=True)
    return str(folder)


class Annotator:
    """A Ray Data actor: loads the pipeline once, then writes the part file of each piece it is given."""

    def __init__(self, model: Any, filesystem, out_dir: str, fmt: str, text_field: str, id_field: str,
                 max_length: Optional[int], nlp_batch_size: Optional[int], kill: Optional[str] = None) -> None:
        import torch

        from .extract import load_model

        torch.set_num_threads(1)
        if not isinstance(model, str):  # a shipped pipeline folder (an object reference to its tar archive)
            import ray

            model = unpack_model(ray.get(model[0]))
        self.nlp = load_model(model)
        if max_length is not None:
            self.nlp.max_length = max_length
        self.filesystem, self.out_dir, self.fmt = filesystem, out_dir, fmt
        self.text_field, self.id_field, self.nlp_batch_size = text_field, id_field, nlp_batch_size
        self.kill, self.done = kill, 0
        self._group: Tuple[Any, Any] = (None, None)  # the last Parquet row group read, kept for the next piece

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, List[Any]]:
        results: Dict[str, List[Any]] = {k: [] for k in ("piece", "records", "errors", "words", "numbers", "rss_mb", "pid")}
        for i in range(len(batch["piece"])):
            piece = {key: (value[i].item() if hasattr(value[i], "item") else value[i]) for key, value in batch.items()}
            counts = self.write_piece(piece)
            results["piece"].append(piece["piece"])
            for key, value in zip(("records", "errors", "words", "numbers"), counts):
                results[key].append(value)
            results["rss_mb"].append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            results["pid"].append(os.getpid())
            self.done += 1
        return results

    def read(self, piece: Dict[str, Any]) -> Iterator[Tuple[str, Dict[str, Any]]]:
        """(text, record) pairs of a piece, by the local engine's rules, line numbers counted from the file's start."""
        first, max_length = piece["first_row"], self.nlp.max_length
        if piece["format"] == "jsonl":
            with self.filesystem.open_input_file(piece["file"]) as source:
                source.seek(piece["start"])
                data = source.read(piece["stop"] - piece["start"])
            lines = data.split(b"\n")
            if lines[-1] == b"":
                lines.pop()
            for n, raw in enumerate(lines):
                yield parse_line(raw + b"\n", first + n, self.text_field, self.id_field, max_length)
            return
        key = (piece["file"], piece["row_group"])
        if self._group[0] != key:
            parquet = catalog_io.open_parquet(piece["file"], self.text_field, filesystem=self.filesystem)
            columns = [c for c in dict.fromkeys([self.text_field, self.id_field]) if c in parquet.schema_arrow.names]
            self._group = (key, parquet.read_row_group(piece["row_group"], columns=columns))
        rows = self._group[1].slice(piece["start"], piece["stop"] - piece["start"]).to_pylist()
        for n, row in enumerate(rows):
            yield check_record(row, first + n, self.text_field, self.id_field, max_length)

    def write_piece(self, piece: Dict[str, Any]) -> Tuple[int, int, int, int]:
        """Write the piece's part file (temporary name, renamed at the end); (records, errors, words, numbers)."""
        parsed = list(self.read(piece))
        words = sum(len(text.split()) for text, _ in parsed)
        records = annotate(self.nlp, parsed, self.nlp_batch_size)
        target = Path(self.out_dir) / f"part-{piece['piece']:06d}.{self.fmt}"
        n = errors = numbers = 0
        source = {"file": piece["file"]}
        with replaced_on_success(target, binary=self.fmt == "parquet", errors="backslashreplace") as sink:
            writer = catalog_io.ParquetRecordWriter(sink, with_source=True) if self.fmt == "parquet" else None
            for record in records:
                row = piece["first_row"] + n
                record.update(source, row=row)
                if writer is not None:
                    is_error, found = writer.write(record, row)
                else:
                    line, is_error, found = dumps_record(record, row)
                    if is_error and "error" not in record:  # an id that cannot be written: keep where it comes from
                        line = json.dumps({**json.loads(line), **source, "row": row}, ensure_ascii=False)
                    sink.write(line + "\n")
                n, errors, numbers = n + 1, errors + is_error, numbers + found
                self._maybe_die(n, piece["rows"])
            if writer is not None:
                writer.close()
        return n, errors, words, numbers

    def _maybe_die(self, written: int, rows: int) -> None:
        """The fault-tolerance test's hook: halfway through a part file, after N pieces, the first worker to claim the
        marker file exits at once (a killed process: no cleanup, no exception)."""
        if self.kill is None or written != max(1, rows // 2):
            return
        after, marker = self.kill.split(":", 1)
        if self.done >= int(after):
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os._exit(1)


# the driver -------------------------------------------------------------------------------------------------------


def check_output_dir(path: Path, input_path: str) -> Path:
    """The output folder, checked before any work: its parent exists; it is not a file, not the input (or inside
    it, or holding it) and, if it exists, empty or an earlier output (it has ``_SUCCESS``), which is replaced."""
    path = Path(path)
    if "://" not in str(input_path):
        source, target = Path(input_path).resolve(), path.resolve()
        if source == target or target in source.parents or source in target.parents:
            raise ValueError(f"{path}: the output folder would overlap the input {input_path}; choose another folder")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: is a file; the Ray engine writes a folder of part files")
    if not path.absolute().parent.is_dir():
        raise ValueError(f"{path.absolute().parent}: folder not found (output {path})")
    if path.is_dir() and any(path.iterdir()) and not (path / SUCCESS).is_file():
        raise ValueError(f"{path}: folder exists and is not an extract output (no {SUCCESS}); choose a new folder")
    return path


def check_model(model: str, ship: bool) -> Any:
    """What the workers load: a pipeline folder's path (embedded), its tar archive (``ship``: sent once through
    Ray's object store), or an installed package's name; ValueError (one line) when it is none of these."""
    import spacy.util

    folder = Path(model)
    if folder.is_dir():
        if not (folder / "config.cfg").is_file():
            raise ValueError(f"cannot load model {model!r}: no config.cfg in the folder")
        if not ship:
            return str(folder.resolve())
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(folder, arcname=".")
        return buffer.getvalue()
    if spacy.util.is_package(model):
        return model
    raise ValueError(f"cannot load model {model!r}: not a pipeline folder or an installed package")


def _check_address(address: str) -> None:
    """ValueError (one line) when ``host:port`` or ``ray://host:port`` does not accept a connection (5 s)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise ValueError(f"--address {address}: cannot reach a Ray cluster ({err.strerror or err})") from None


def start_ray(address: Optional[str], workers: int, progress: Optional[bool]) -> bool:
    """Join the cluster at ``address``, or start Ray on this machine with ``workers`` CPUs; True when this call
    started or joined it (and so shuts it down). Ray already running in this process is used as it is."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ValueError("the Ray engine needs Ray Data: pip install 'spacy-mtlave[ray]'") from None
    import logging

    if address is not None:
        _check_address(address)
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # an embedded, local-only instance
    quiet = {"logging_level": logging.WARNING, "log_to_driver": True}
    try:
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as err:
        where = f"--address {address}" if address else "ray.init"
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{where}: cannot start or reach Ray ({reason})") from None
    return True


def _move_into_place(staging: Path, target: Path) -> None:
    """The finished folder onto ``target`` (an earlier output there is removed after the move)."""
    old = None
    if target.exists():
        old = temporary_path(target)
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def part_rows(batch_size: Optional[int]) -> int:
    """Records per piece (one part file): ``batch_size`` times the largest factor that keeps it at most 4,096 (so
    the ``nlp.pipe`` batches of a piece line up with the local engine's), or 4,096 for the pipeline's batch size."""
    return PART_ROWS if batch_size is None else batch_size * max(1, PART_ROWS // batch_size)


def extract_ray(
    model: str,
    input_path: str,
    output_dir: Path,
    text_field: str = "input",
    id_field: str = "id",
    batch_size: Optional[int] = None,
    workers: int = 2,
    address: Optional[str] = None,
    output_format: str = "jsonl",
    max_length: Optional[int] = None,
    progress: Optional[bool] = None,
    rows_per_part: Optional[int] = None,
) -> RayExtractStats:
    """Extract every record of ``input_path`` into the folder ``output_dir`` (see the module docstring).

    ``batch_size``: texts per ``nlp.pipe`` batch, as in the local engine (default: the pipeline's); a piece (one
    actor call, one part file) holds ``rows_per_part`` records (default :func:`part_rows`); ``workers``: actors (each one CPU); ``address``: None starts Ray on this machine with ``workers`` CPUs and stops it at the end, "auto" or
    "ray://HOST:PORT" joins a cluster (a pipeline folder is then shipped once through the object store).
    ValueError (one line) for bad settings, a bad input, model or output, no Ray, an unreachable address; nothing is
    left at ``output_dir`` unless the run completes.
    """
    start = time.perf_counter()
    check_settings(batch_size, 1, max_length)
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    fmt = catalog_io.output_format(output_dir, output_format or "jsonl")
    target = check_output_dir(output_dir, str(input_path))
    if rows_per_part is not None and rows_per_part < 1:
        raise ValueError(f"rows_per_part must be at least 1, got {rows_per_part}")
    filesystem, pieces = plan_pieces(str(input_path), rows_per_part or part_rows(batch_size), text_field)
    loadable = check_model(model, ship=address is not None)
    started = start_ray(address, workers, progress)
    import ray
    import ray.data

    staging = temporary_path(target)
    try:
        staging.mkdir()
        context = ray.data.DataContext.get_current()
        if progress is not None:
            context.enable_progress_bars = progress
        model_arg = [ray.put(loadable)] if isinstance(loadable, bytes) else loadable  # a list: not resolved by Ray
        kwargs = dict(model=model_arg, filesystem=filesystem, out_dir=str(staging.resolve()), fmt=fmt, text_field=text_field,
                      id_field=id_field, max_length=max_length, nlp_batch_size=batch_size, kill=os.environ.get(KILL_HOOK))
        try:
            results = []
            if pieces:  # one block per piece: the actors share them out as they become free
                dataset = ray.data.from_items(pieces, override_num_blocks=len(pieces)).map_batches(
                    Annotator, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
                    fn_constructor_kwargs=kwargs)
                results = dataset.take_all()
        except ray.exceptions.RayError as err:  # a worker's exception, retries exhausted: one line, not Ray's report
            lines = [line for line in str(err).strip().splitlines() if line.strip()]
            raise RuntimeError(lines[-1] if lines else type(err).__name__) from None
        stats = _check_results(pieces, results, workers)
        for stray in staging.glob(".*.tmp"):  # part files cut short by a killed worker (their pieces were redone)
            stray.unlink()
        stats.seconds = time.perf_counter() - start
        (staging / SUCCESS).write_text(json.dumps({**stats.__dict__, "summary": stats.summary()}, indent=2) + "\n")
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if started:
            ray.shutdown()
    return stats


def _check_results(pieces: List[Dict[str, Any]], results: List[Dict[str, Any]], workers: int) -> RayExtractStats:
    """The run's counts; RuntimeError when a piece is missing or records out differ from records in."""
    stats = RayExtractStats(records_in=sum(p["rows"] for p in pieces), workers=workers)
    by_piece = {r["piece"]: r for r in results}  # a retried piece may report twice: its part file was replaced
    missing = [p["piece"] for p in pieces if p["piece"] not in by_piece]
    if missing:
        raise RuntimeError(f"{len(missing)} pieces were not written (first: {missing[0]})")
    for r in by_piece.values():
        stats.records_out += r["records"]
        stats.errors += r["errors"]
        stats.words += r["words"]
        stats.numbers_as_strings += r["numbers"]
        stats.max_rss_mb = max(stats.max_rss_mb, float(r["rss_mb"]))
    stats.worker_pids = sorted({int(r["pid"]) for r in results})
    stats.parts = len(by_piece)
    if stats.records_out != stats.records_in:
        raise RuntimeError(f"{stats.records_in} records in but {stats.records_out} out")
    return stats
