"""The manifest that makes a backup self-describing: versions, counts, checksums, PITR window."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azora_nexus.errors import Invalid

MANIFEST = "manifest.json"
FORMAT = 1


@dataclass
class Manifest:
    """What a backup holds and how to check it is whole."""

    created_at: float
    versions: dict[str, str]
    # Point-in-time restores reach any moment in [pitr_from, pitr_to] (seconds since epoch).
    pitr_from: float
    pitr_to: float
    table_counts: dict[str, int]
    collection_counts: dict[str, int]
    indexes: dict[str, list[dict[str, Any]]]
    checksums: dict[str, str] = field(default_factory=dict)
    format: int = FORMAT

    def write(self, root: Path) -> None:
        self.checksums = {
            str(path.relative_to(root)): sha256_of(path)
            for path in sorted(files_under(root))
            if path.name != MANIFEST
        }
        (root / MANIFEST).write_text(json.dumps(asdict(self), indent=2, sort_keys=True))

    @classmethod
    def read(cls, root: Path) -> Manifest:
        """The manifest of the backup at `root`; Invalid when it is missing or malformed."""
        try:
            raw = json.loads((root / MANIFEST).read_text())
            manifest = cls(**raw)
        except FileNotFoundError as exc:
            raise Invalid(f"{root} is not an azora backup (no {MANIFEST})") from exc
        except (ValueError, TypeError) as exc:
            raise Invalid(f"{root}/{MANIFEST} is damaged: {exc}") from exc
        if manifest.format != FORMAT:
            raise Invalid(f"{root}: backup format {manifest.format}, this build reads {FORMAT}")
        return manifest

    def verify_files(self, root: Path) -> None:
        """Invalid naming the first file that is missing, extra or not as it was written."""
        present = {str(p.relative_to(root)) for p in files_under(root) if p.name != MANIFEST}
        for name in sorted(set(self.checksums) | present):
            if name not in present:
                raise Invalid(f"backup damaged: {name} is missing")
            if name not in self.checksums:
                raise Invalid(f"backup damaged: {name} is not in the manifest")
            if sha256_of(root / name) != self.checksums[name]:
                raise Invalid(f"backup damaged: {name} does not match its checksum")


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def iso(timestamp_s: float) -> str:
    """Epoch seconds as an ISO 8601 UTC time, to the second."""
    return datetime.fromtimestamp(timestamp_s, UTC).isoformat(timespec="seconds")
