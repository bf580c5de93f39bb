"""Structural errors in an input file: one line ``FILE:LINE: field 'x': problem`` (a problem quoting a long value is
cut to 300 characters)."""

MAX_PROBLEM = 300
from pathlib import Path
from typing import Optional, Union


class ConvertError(ValueError):
    """The input cannot be converted (malformed JSON, a missing field, bad offsets, ...).

    Per-record problems (a value not found, an overlap dropped) are never raised: they are
    counted in the report.
    """

    def __init__(
        self,
        problem: str,
        path: Optional[Union[str, Path]] = None,
        line: Optional[int] = None,
        field: Optional[str] = None,
    ) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        super().__init__(problem)

    def __str__(self) -> str:
        where = self.path or ""
        if self.path is not None and self.line is not None:
            where = f"{self.path}:{self.line}"
        parts = [where] if where else []
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        problem = self.problem if len(self.problem) <= MAX_PROBLEM else self.problem[: MAX_PROBLEM - 1] + "…"
        parts.append(problem)
        return ": ".join(parts).replace("\r", "\\r").replace("\n", "\\n")
