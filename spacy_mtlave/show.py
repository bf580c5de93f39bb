"""displaCy entity rendering of the extracted attributes, one colour per label."""
import colorsys
from typing import Any, Dict, Iterable

from spacy import displacy
from spacy.language import Language
from spacy.tokens import Doc

from .evaluation.evaluate import model_labels
from .json_input import LONE_SURROGATE

GOLDEN_RATIO = 0.618033988749895


def label_colors(labels: Iterable[str]) -> Dict[str, str]:
    """{label: "#rrggbb"}: pastel colours, hues spread by the golden ratio over the sorted labels, so the same
    label set always gets the same, pairwise different colours."""
    colors = {}
    for i, label in enumerate(sorted(set(labels))):
        red, green, blue = colorsys.hls_to_rgb((i * GOLDEN_RATIO) % 1.0, (0.78, 0.68, 0.86)[i % 3], 0.75)
        colors[label] = f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"
    return colors


def display_options(nlp: Language, doc: Doc) -> Dict[str, Any]:
    """displaCy ``ent`` options: colours for the model's labels (and any other label in ``doc.ents``)."""
    return {"colors": label_colors(set(model_labels(nlp)) | {ent.label_ for ent in doc.ents})}


def command_line_text(text: str) -> str:
    """A command-line argument as text spaCy can take: bytes that are not UTF-8 (which Python keeps as lone
    surrogates) become U+FFFD."""
    if LONE_SURROGATE.search(text):
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # a surrogate that stands for no byte
            text = LONE_SURROGATE.sub("\ufffd", text)
    return text


def render_html(nlp: Language, text: str) -> str:
    """A standalone HTML page showing ``text`` with its extracted attributes highlighted."""
    doc = nlp(text)
    return displacy.render(doc, style="ent", page=True, options=display_options(nlp, doc))


def serve_html(nlp: Language, text: str, port: int = 5000) -> None:
    """Serve the rendering on http://0.0.0.0:PORT until interrupted."""
    doc = nlp(text)
    displacy.serve(doc, style="ent", options=display_options(nlp, doc), port=port)
