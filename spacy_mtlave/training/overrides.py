"""Training configs and their command-line overrides (``--training.max_steps 20``), checked before any work.

spaCy accepts an override of a setting that does not exist in an existing section (``--training.max_step 5`` trains
as if it was not given) and reports a missing value or a wrong type with a multi-line message and exit code 1 once
training starts. Here every problem is a ValueError with one line, raised before training: an argument that is not
``--section.key value`` (or ``--section.key=value``), a key that names no setting of the config (nor of spaCy's
defaults, nor a parameter of the registered function or component factory its section names), a number setting given something else than a number, a true/false setting given something else than a
boolean, and a config file that cannot be read as a spaCy training config.
"""
import configparser
import difflib
import inspect
import os
import shlex
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Set, Tuple

import srsly
from spacy import util
from thinc.api import Config

ENV_VAR = "SPACY_CONFIG_OVERRIDES"  # read as spaCy's parse_config_overrides does
_MISSING = object()


def one_line(err: BaseException, limit: int = 200) -> str:
    """An exception's message on one line (whitespace collapsed), cut to ``limit`` characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_training_config(path: Path) -> Config:
    """The config at ``path``, not interpolated; ValueError naming the file when it cannot be read as a spaCy training
    config (syntax, encoding, no [nlp], [components] or [training] section)."""
    try:
        config = util.load_config(path, interpolate=False)
    except (configparser.Error, ValueError, OSError) as err:  # confection's ConfigValidationError is a ValueError
        raise ValueError(f"{path}: not a spaCy config ({one_line(err)})") from None
    missing = [section for section in ("nlp", "components", "corpora", "training") if not isinstance(config.get(section), dict)]
    if missing:
        raise ValueError(f"{path}: not a spaCy training config (no [{'], ['.join(missing)}] section)")
    return config


def _parse_value(value: str) -> Any:
    """As spaCy: JSON if it parses (numbers, true/false, null, lists, objects), else the string."""
    try:
        return srsly.json_loads(value)
    except ValueError:
        return value


def parse_overrides(args: Sequence[str], env: bool = True) -> Dict[str, Any]:
    """``["--training.max_steps", "20", "--paths.train=x"]`` -> ``{"training.max_steps": 20, "paths.train": "x"}``
    (values read as JSON when they parse), then the ``SPACY_CONFIG_OVERRIDES`` environment variable as spaCy reads it
    (it wins); ValueError (one line) for an argument that is not ``--section.key value``."""
    overrides = dict(_pairs(list(args)))
    if env and os.environ.get(ENV_VAR):
        overrides.update(_pairs(shlex.split(os.environ[ENV_VAR]), f" (in {ENV_VAR})"))
    return overrides


def _pairs(args: List[str], where: str = "") -> Iterator[Tuple[str, Any]]:
    while args:
        option = args.pop(0)
        if not option.startswith("--"):
            raise ValueError(f"unexpected argument {option!r}{where}: config overrides look like --section.key value")
        name, value = option[2:].split("=", 1) if "=" in option else (option[2:], None)
        if "." not in name or not all(name.split(".")):
            raise ValueError(f"no such option: {option}{where} (config overrides look like --section.key value)")
        if value is None:
            if not args or args[0].startswith("--"):
                raise ValueError(f"{option}{where}: missing value")
            value = args.pop(0)
        yield name, _parse_value(value)


def _setting(config: Dict[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _keys(config: Dict[str, Any], prefix: str = "") -> Iterator[str]:
    """The dotted names of the config's settings (not of its sections)."""
    for name, value in config.items():
        if isinstance(value, dict):
            yield from _keys(value, f"{prefix}{name}.")
        else:
            yield prefix + name


def _parameters(section: Any) -> Set[str]:
    """The arguments a config section takes beyond those it lists: the parameters of the registered function it names
    (``@architectures = ...``) or the settings of its component factory (``factory = ...``)."""
    from spacy.language import Language

    if not isinstance(section, dict):
        return set()
    try:
        for key, name in section.items():
            if key.startswith("@"):
                return set(inspect.signature(util.registry.get(key[1:], name)).parameters)
        if isinstance(section.get("factory"), str):
            return set(Language.get_factory_meta(section["factory"]).default_config or {})
    except (ValueError, KeyError, TypeError, LookupError):  # not registered: nothing more than it lists
        pass
    return set()


def check_overrides(config: Config, overrides: Dict[str, Any], source: Path) -> None:
    """ValueError (one line) for an override naming no setting of ``config`` (read from ``source``), of spaCy's
    default config or of the function or factory its section names, or whose value does not have the setting's kind
    (number, true/false)."""
    if not overrides:
        return
    from spacy.language import DEFAULT_CONFIG

    for key, value in overrides.items():
        current = _setting(config, key)
        if current is _MISSING:
            current = _setting(DEFAULT_CONFIG, key)
        parent, _, option = key.rpartition(".")
        if current is _MISSING and option in _parameters(_setting(config, parent)):
            continue  # a default of the function, not written in the config
        if current is _MISSING:
            close = difflib.get_close_matches(key, list(_keys(config)), n=1)
            hint = f" (did you mean --{close[0]}?)" if close else ""
            raise ValueError(f"--{key}: no such setting in {source}{hint}")
        if isinstance(current, bool) and not isinstance(value, bool):
            raise ValueError(f"--{key}: expected true or false, got {value!r}")
        if isinstance(current, (int, float)) and not isinstance(current, bool) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"--{key}: expected a number (the config has {current!r}), got {value!r}")
