"""The install is the tested one: lower bounds are the locked versions, and a library whose
internals Nexus uses refuses to run outside its tested range, in one line."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from azora_nexus.compat import INTERNALS_USED, supported_ranges

ROOT = Path(__file__).resolve().parents[1]


def locked_versions() -> dict[str, Version]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {pkg["name"]: Version(pkg["version"]) for pkg in lock["package"] if "version" in pkg}


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        lines += extra
    return [Requirement(line) for line in lines]


def lower_bound(requirement: Requirement) -> Version:
    bounds = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==")]
    assert len(bounds) == 1, f"{requirement} needs exactly one lower bound"
    return bounds[0]


def test_every_lower_bound_is_the_locked_version_so_the_lowest_allowed_install_is_tested() -> None:
    locked = locked_versions()
    for requirement in declared():
        name = requirement.name.lower().replace("_", "-")
        assert name in locked, f"{name} is not in uv.lock: run `uv lock`"
        assert lower_bound(requirement) == locked[name], (
            f"{requirement}: the lock has {locked[name]}; move the bound or the lock"
        )


def test_the_internals_libraries_have_an_upper_bound() -> None:
    ranges = supported_ranges()
    for name in INTERNALS_USED:
        assert any(s.operator == "<" for s in ranges[name].specifier), ranges[name]


def test_a_library_outside_its_tested_range_stops_azora_with_one_line(tmp_path: Path) -> None:
    # A distribution earlier on sys.path wins importlib.metadata's lookup: an "installed"
    # websockets 99.0 without touching the real venv.
    info = tmp_path / "websockets-99.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: websockets\nVersion: 99.0\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
            "from azora_nexus.cli.main import run; run()",
            "status",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "azora: websockets 99.0 is outside the range Nexus was tested with "
        "(websockets<17.5,>=17.4); reinstall from the lock file (scripts/bootstrap)\n"
    )
