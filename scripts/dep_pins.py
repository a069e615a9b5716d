#!/usr/bin/env python3
"""Print pip constraints that pin evse's runtime dependencies to one of two version sets.

    scripts/dep_pins.py floors   the lowest versions pyproject.toml allows (each ">=X" → "==X";
                                 where the [test] extra asks more of a runtime library, that)
    scripts/dep_pins.py yocto    the versions the Yocto layer ships: meta-evse's own recipe,
                                 else meta-evse-backports', else the scarthgap recipe listed in
                                 tests/ship/data/scarthgap-recipes.tsv

Only the ``[project] dependencies`` are pinned; their own dependencies and the test tools
resolve as usual (like ``uv pip install --resolution lowest-direct``). scripts/test-deps
uses this to run the suite against both sets (.ci/run).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [ROOT / "yocto-layer" / "meta-evse", ROOT / "yocto-layer" / "meta-evse-backports"]
UPSTREAM = ROOT / "tests" / "ship" / "data" / "scarthgap-recipes.tsv"


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def test_requirements() -> dict[str, Requirement]:
    """The [test] extra's requirements by canonical name (some raise a runtime floor)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = (Requirement(text) for text in project["optional-dependencies"]["test"])
    return {str(canonicalize_name(r.name)): r for r in reqs}


def recipe_name(requirement: Requirement) -> str:
    """OpenEmbedded's name for a PyPI distribution: python3-<name>, "python-" dropped."""
    return "python3-" + str(canonicalize_name(requirement.name)).removeprefix("python-")


def floor(requirement: Requirement) -> str:
    """The version of the ``>=`` clause.

    Raises:
        SystemExit: the requirement has no ``>=`` floor.
    """
    for spec in requirement.specifier:
        if spec.operator == ">=":
            return spec.version
    raise SystemExit(f"{requirement}: no >= floor in pyproject.toml")


def layer_versions() -> dict[str, str]:
    """Recipe → version: upstream scarthgap, overridden by backports, then by meta-evse."""
    versions = {}
    for line in UPSTREAM.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version, _ = line.split("\t")
            versions.setdefault(name, version)
    for layer in reversed(LAYERS):
        for path in layer.glob("recipes-*/*/*.bb"):
            name, _, version = path.stem.partition("_")
            if version:
                versions[name] = version
    return versions


def main(argv: list[str]) -> int:
    if argv[1:] not in (["floors"], ["yocto"]):
        print(__doc__, file=sys.stderr)
        return 2
    versions = layer_versions() if argv[1] == "yocto" else {}
    tests = test_requirements()
    for req in runtime_requirements():
        if argv[1] == "floors":
            # A [test] requirement may need more than the runtime floor (the test peers'
            # API): the lowest version the whole [test] install allows is the higher one.
            version = floor(req)
            if (extra := tests.get(str(canonicalize_name(req.name)))) is not None:
                version = max(version, floor(extra), key=Version)
        else:
            try:
                version = versions[recipe_name(req)]
            except KeyError:
                raise SystemExit(f"{req}: no {recipe_name(req)} recipe in the layers") from None
        print(f"{canonicalize_name(req.name)}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
