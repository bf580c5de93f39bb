"""Output files written by one rule in every command: checked before any work, written to a temporary file in the
target folder and moved into place at the end (``os.replace``), so a crash or Ctrl-C never leaves a file that looks
complete, and an input is never opened for writing.

An output that exists and is not a regular file or a folder (``/dev/stdout``, a named pipe) is written directly. An
output that is a symbolic link is replaced where the link points (the link stays).
"""
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterable, Iterator, List, Optional, Tuple, Union

import srsly

PathLike = Union[str, Path]


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def check_output_file(path: PathLike, inputs: Iterable[PathLike] = ()) -> Path:
    """``path`` (a symbolic link resolved) if a file can be written there; ValueError naming it when it is a folder,
    its folder does not exist or is not a folder, or it is one of ``inputs`` (also through a link)."""
    path = Path(path)
    if _special(path):  # /dev/stdout, a named pipe: written directly
        return path
    target = path.resolve() if path.is_symlink() else path
    if target.is_dir():
        raise ValueError(f"{path}: is a directory; give a file name (e.g. {path / 'out'})")
    folder = target.parent
    if not folder.is_dir():
        raise ValueError(f"{folder}: {'not a folder' if folder.exists() else 'folder not found'} (output {path})")
    for source in inputs:
        source = Path(source)
        same = target.exists() and source.exists() and os.path.samefile(target, source)
        if same or target.resolve() == source.resolve():
            raise ValueError(f"{path}: the output would overwrite the input {source}; choose another output file")
    return target


def _special(path: Path) -> bool:
    """An existing output that is neither a regular file nor a folder (a device, a pipe): written directly."""
    return path.exists() and not path.is_file() and not path.is_dir()


def temporary_path(path: Path) -> Path:
    """A new, unused name in ``path``'s folder for the temporary file of ``path``."""
    return path.with_name(f".{path.name[:180]}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _open_new(path: Path, binary: bool, encoding: Optional[str], errors: Optional[str]) -> IO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    return os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else encoding, errors=None if binary else errors)


@contextmanager
def replaced_on_success(
    path: PathLike, binary: bool = False, encoding: str = "utf-8", errors: Optional[str] = None, keep_partial: bool = False
) -> Iterator[IO]:
    """A file object writing ``path``'s temporary file, moved onto ``path`` when the block ends without an exception.
    On an exception (Ctrl-C included) the temporary file is removed, or with ``keep_partial`` moved to
    ``<path>.partial``, and the exception goes on."""
    path = Path(path)
    if _special(path):
        with open(path, "wb" if binary else "w", encoding=None if binary else encoding, errors=None if binary else errors) as handle:
            yield handle
        return
    tmp = temporary_path(path)
    try:
        with _open_new(tmp, binary, encoding, errors) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        if keep_partial and tmp.exists():
            os.replace(tmp, partial_path(path))
        else:
            tmp.unlink(missing_ok=True)
        raise


def partial_path(path: PathLike) -> Path:
    """Where :func:`replaced_on_success` with ``keep_partial`` leaves what was written before a failure."""
    return Path(f"{path}.partial")


def write_text(path: PathLike, text: str, check: bool = True) -> Path:
    """``text`` to ``path`` (UTF-8) by :func:`replaced_on_success`; ValueError (one line) when it cannot be written."""
    path = check_output_file(path) if check else Path(path)
    try:
        with replaced_on_success(path) as handle:
            handle.write(text)
    except OSError as err:
        raise ValueError(f"{path}: cannot write ({_reason(err)})") from None
    return path


def write_json(path: PathLike, data, indent: int = 2) -> Path:
    """``srsly.write_json`` (same text) by :func:`write_text`."""
    return write_text(path, srsly.json_dumps(data, indent=indent))


class StagedFiles:
    """Several outputs committed together (``convert``): :meth:`write` puts each in a temporary file next to its
    target, :meth:`commit` moves them all into place, :meth:`discard` removes the temporary files and the folders
    this object created. Used as a context manager, an exception discards."""

    def __init__(self) -> None:
        self.staged: List[Tuple[Path, Path]] = []  # (temporary, target)
        self.created: List[Path] = []

    def folder(self, path: Path) -> Path:
        """``path`` as a folder, created (with its parents) if needed; ValueError when a file is in the way."""
        missing = [p for p in [path, *path.parents] if not p.exists()]
        for p in reversed(missing):
            try:
                p.mkdir()
            except OSError as err:
                raise ValueError(f"{p}: cannot create the folder ({_reason(err)})") from None
            self.created.append(p)
        if not path.is_dir():
            raise ValueError(f"{path}: is a file, expected a folder")
        return path

    def write(self, path: Path, data: bytes) -> None:
        self.folder(path.parent)
        if path.is_dir():
            raise ValueError(f"{path}: is a folder, expected a file name")
        tmp = temporary_path(path)
        try:
            with _open_new(tmp, True, None, None) as handle:
                handle.write(data)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise ValueError(f"{path}: cannot write ({_reason(err)})") from None
        self.staged.append((tmp, path))

    def commit(self) -> List[Path]:
        try:
            for tmp, path in self.staged:
                os.replace(tmp, path)
        except OSError as err:
            self.discard()
            raise ValueError(f"{err.filename2 or err.filename}: cannot write ({_reason(err)})") from None
        written = [path for _, path in self.staged]
        self.staged, self.created = [], []
        return written

    def discard(self) -> None:
        for tmp, _ in self.staged:
            tmp.unlink(missing_ok=True)
        for folder in reversed(self.created):
            try:
                folder.rmdir()
            except OSError:
                pass
        self.staged, self.created = [], []

    def __enter__(self) -> "StagedFiles":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.discard()
