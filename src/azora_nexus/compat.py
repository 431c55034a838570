"""The libraries whose private internals Nexus relies on, held to the versions it was tested with.

The tested range of each is written once, in pyproject.toml's dependencies; this module reads it
back from the installed package's metadata and compares it with what is installed, so a version
the suite never ran against stops Nexus with one line instead of failing somewhere deep inside.
"""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement

from azora_nexus.errors import NexusError

DISTRIBUTION = "azora-nexus"
# Reached into beyond their public API (realtime/ and workers/): their range is exact.
INTERNALS_USED = ("python-socketio", "python-engineio", "uvicorn", "websockets")


class UntestedDependency(NexusError):
    """An installed library is outside the range Nexus was tested with."""

    code = "untested_dependency"


def supported_ranges() -> dict[str, Requirement]:
    """Each direct dependency's requirement, as declared in pyproject.toml, by package name."""
    declared = metadata.requires(DISTRIBUTION) or []
    requirements = (Requirement(line) for line in declared)
    return {req.name.lower(): req for req in requirements if req.marker is None}


def check_tested_versions(names: tuple[str, ...] = INTERNALS_USED) -> None:
    """Raise `UntestedDependency` naming the first library outside its tested range."""
    ranges = supported_ranges()
    for name in names:
        wanted = ranges[name]
        try:
            found = metadata.version(name)
        except metadata.PackageNotFoundError as exc:
            raise UntestedDependency(f"{name} is not installed (tested: {wanted})") from exc
        if not wanted.specifier.contains(found, prereleases=True):
            raise UntestedDependency(
                f"{name} {found} is outside the range Nexus was tested with "
                f"({name}{wanted.specifier}); reinstall from the lock file (scripts/bootstrap)"
            )
