"""Serialization shared by the components whose torch modules are sized from their ``cfg`` (tag sets)."""
from pathlib import Path

import srsly
from spacy import util


class SizedFromCfg:
    """to/from bytes and disk of ``cfg`` and ``model``; ``_rebuild()`` re-creates the torch modules from the loaded
    cfg before the weights are loaded into them (the way spacy-transformers restores its model). The keys named in
    ``settings_keys`` are the component's settings from its config: they win over the stored cfg, so a component
    made with other settings (e.g. an ``ave_tagger`` no longer bound to a vertical) can load another's weights."""

    settings_keys: tuple = ()

    def _load_cfg(self, stored: dict) -> None:
        settings = {key: self.cfg[key] for key in self.settings_keys if key in self.cfg}
        self.cfg.update(stored)
        self.cfg.update(settings)

    def _rebuild(self) -> None:
        raise NotImplementedError

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        return util.to_bytes({"cfg": lambda: srsly.json_dumps(self.cfg), "model": self.model.to_bytes}, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()):
        msg = srsly.msgpack_loads(bytes_data)
        if "cfg" not in exclude:
            self._load_cfg(srsly.json_loads(msg["cfg"]))
        self._rebuild()
        if "model" not in exclude:
            self.model.from_bytes(msg["model"])
        return self

    def to_disk(self, path, *, exclude=tuple()) -> None:
        path = util.ensure_path(path)
        util.to_disk(path, {"cfg": lambda p: srsly.write_json(p, self.cfg), "model": lambda p: self.model.to_disk(p)}, exclude)

    def from_disk(self, path, *, exclude=tuple()):
        path = Path(path)
        if "cfg" not in exclude:
            self._load_cfg(srsly.read_json(path / "cfg"))
        self._rebuild()
        if "model" not in exclude:
            self.model.from_bytes((path / "model").read_bytes())
        return self
