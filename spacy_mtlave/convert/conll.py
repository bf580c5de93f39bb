"""``conll``: ``token<TAB>tag`` per line (without a tab: first and last whitespace-separated column),
a blank line between docs, tags in BIO (IOB2 or IOB1) or BILUO, ``B-x`` or ``B_x``.

Lines end at LF, CRLF or CR. A line starting with "#" and holding no tab is a comment; ``# vertical = X`` sets the vertical of the
docs that follow (``--vertical`` overrides it). ``-DOCSTART-`` lines are ignored. The tokens are
joined by single spaces and re-tokenized with the reference tokenizer; since every given token
boundary is a space, the tagged spans land exactly on reference tokens.
"""
import re
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from spacy.language import Language

from .errors import ConvertError
from .placement import CharSpan, make_doc, resolve_overlaps, set_gold
from .records import Record, iter_lines, skip_long_text

VERTICAL_COMMENT = re.compile(r"#\s*vertical\s*=\s*(.*?)\s*$")


def read_conll(path: Path, nlp: Language, vertical: Optional[str] = None) -> Iterator[Record]:
    current = vertical
    tokens: List[Tuple[int, str, str]] = []  # (line, token, tag)
    for line, text in iter_lines(path):
        if text.startswith("#") and "\t" not in text:
            match = VERTICAL_COMMENT.match(text)
            if match and vertical is None:
                if tokens:
                    yield _record(tokens, current, path, nlp)
                    tokens = []
                current = match.group(1) or None
            continue
        if not text.strip():
            if tokens:
                yield _record(tokens, current, path, nlp)
                tokens = []
            continue
        columns = text.split("\t") if "\t" in text else text.split()
        if len(columns) < 2 or not columns[0].strip():
            raise ConvertError("expected 'token<TAB>tag'", path, line)
        if columns[0] == "-DOCSTART-":
            continue
        tokens.append((line, columns[0], columns[-1].strip()))
    if tokens:
        yield _record(tokens, current, path, nlp)


def _record(tokens: List[Tuple[int, str, str]], vertical: Optional[str], path: Path, nlp: Language) -> Record:
    first = tokens[0][0]
    if vertical is None:
        raise ConvertError("no vertical: add a '# vertical = NAME' line or pass --vertical", path, first)
    words = [word for _, word, _ in tokens]
    starts = [0]
    for word in words[:-1]:
        starts.append(starts[-1] + len(word) + 1)
    text = " ".join(words)
    skip = skip_long_text(text, nlp.max_length)
    if skip is not None:
        return Record(first, vertical, skip=skip)
    doc = make_doc(nlp, text, vertical)
    spans: List[CharSpan] = []
    open_span: Optional[List] = None  # [start index, end index, label]
    for i, (line, _, tag) in enumerate(tokens):
        prefix, label = _parse_tag(tag, path, line)
        continues = open_span is not None and open_span[2] == label and prefix in "IL"
        if open_span is not None and not continues:
            spans.append(_char_span(open_span, starts, words, tokens))
            open_span = None
        if prefix == "O":
            continue
        if continues:
            open_span[1] = i
        else:
            open_span = [i, i, label]
        if prefix in "LU":
            spans.append(_char_span(open_span, starts, words, tokens))
            open_span = None
    if open_span is not None:
        spans.append(_char_span(open_span, starts, words, tokens))
    placed, outcomes = resolve_overlaps(doc, spans)
    set_gold(doc, placed)
    return Record(first, vertical, doc, outcomes)


def _parse_tag(tag: str, path: Path, line: int) -> Tuple[str, str]:
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[0] in "BILU" and tag[1] in "-_" and tag[2:].strip():
        return tag[0], tag[2:]
    raise ConvertError(f"invalid tag {tag!r}: expected O, B-x, I-x, L-x or U-x ('_' also accepted)", path, line, "tag")


def _char_span(open_span: List, starts: List[int], words: List[str], tokens) -> CharSpan:
    first, last, label = open_span
    start, end = starts[first], starts[last] + len(words[last])
    return (start, end, label, " ".join(words[first : last + 1]), tokens[first][0])
