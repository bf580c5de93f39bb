"""Project assets from a local data folder: link ``assets/<path>`` to ``DATA_DIR/<path>`` after checking the md5
checksum that project.yml records for it. Nothing is downloaded."""
import hashlib
from pathlib import Path
from typing import List

import srsly


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def link_assets(data_dir: Path, project_file: Path = Path("project.yml")) -> List[Path]:
    """For every ``assets`` entry of project_file (``dest: assets/<path>``, ``checksum``), check
    ``DATA_DIR/<path>`` and symlink dest to it. ValueError naming the file on a missing file or a bad checksum."""
    project_file = Path(project_file)
    root = project_file.resolve().parent
    linked = []
    for i, asset in enumerate(srsly.read_yaml(project_file).get("assets", [])):
        dest = Path(asset.get("dest", ""))
        if not dest.parts or dest.parts[0] != "assets":
            raise ValueError(f"{project_file}: assets[{i}].dest must start with 'assets/', got {str(dest)!r}")
        source = (Path(data_dir) / Path(*dest.parts[1:])).resolve()
        if not source.is_file():
            raise ValueError(f"{source}: not found (assets[{i}] of {project_file}; set vars.data_dir)")
        expected = asset.get("checksum")
        if expected and md5(source) != expected:
            raise ValueError(f"{source}: md5 {md5(source)} does not match the checksum {expected} in {project_file}")
        target = root / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(source)
        linked.append(target)
    return linked
