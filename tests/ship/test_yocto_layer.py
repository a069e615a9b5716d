"""meta-evse stays honest: RDEPENDS cover pyproject's dependencies at versions that satisfy
them, the recipe matches the build backend and version, and oelint-adv finds nothing."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "yocto-layer" / "meta-evse"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

#: Runtime dependencies that meta-evse does not carry because the scarthgap layers it depends
#: on already provide a recent enough version: recipe → (layer, version in scarthgap).
#: Everything else pyproject.toml needs must have a recipe in meta-evse.
UPSTREAM_SCARTHGAP = {
    "python3-cryptography": ("openembedded-core", "42.0.5"),
    "python3-pyserial": ("meta-python", "3.5"),
}

#: PEP 517 backend → the bbclass that builds it (openembedded-core scarthgap).
BACKEND_CLASSES = {
    "setuptools.build_meta": "python_setuptools_build_meta",
    "hatchling.build": "python_hatchling",
    "poetry.core.masonry.api": "python_poetry_core",
    "flit_core.buildapi": "python_flit_core",
    "maturin": "python_maturin",
}

#: oelint-adv rules switched off, and why.
OELINT_SUPPRESS = {
    # Makes an HTTP request to each HOMEPAGE: CI has no network, the result says nothing.
    "oelint.vars.homepageping": "needs network",
    # evse has no public home page yet; set HOMEPAGE in evse_*.bb when it has one.
    "oelint.var.mandatoryvar.HOMEPAGE": "no public home page yet",
}


def recipe_name(requirement: Requirement) -> str:
    """OpenEmbedded's name for a PyPI distribution: python3-<name>, "python-" dropped."""
    name = str(canonicalize_name(requirement.name))
    return "python3-" + name.removeprefix("python-")


def layer_recipes() -> dict[str, tuple[Version, Path]]:
    """Recipe name → (version, file) for every versioned recipe in meta-evse."""
    out = {}
    for path in LAYER.glob("recipes-*/*/*.bb"):
        name, _, version = path.stem.partition("_")
        if version:
            out[name] = (Version(version), path)
    return out


def variable(path: Path, name: str) -> str:
    """The value of ``name = "..."`` (line continuations joined) in a recipe."""
    match = re.search(
        rf"^{re.escape(name)}\s*[+?:.]*=\s*\"(.*?)\"", path.read_text(), re.M | re.S
    )
    assert match, f"{path.name}: {name} not set"
    return " ".join(match.group(1).replace("\\\n", " ").split())


def evse_recipe() -> Path:
    recipes = list(LAYER.glob("recipes-evse/evse/evse_*.bb"))
    assert len(recipes) == 1, recipes
    return recipes[0]


def runtime_requirements() -> list[Requirement]:
    return [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]


def test_every_runtime_dependency_is_in_rdepends() -> None:
    rdepends = set(variable(evse_recipe(), "RDEPENDS:${PN}").split())
    missing = [
        f"{req} → {recipe_name(req)}"
        for req in runtime_requirements()
        if recipe_name(req) not in rdepends
    ]
    assert not missing, f"add to RDEPENDS:${{PN}} in {evse_recipe().name}: {missing}"


@pytest.mark.parametrize("requirement", runtime_requirements(), ids=str)
def test_dependency_versions_agree(requirement: Requirement) -> None:
    name = recipe_name(requirement)
    recipes = layer_recipes()
    if name in recipes:
        version, path = recipes[name]
        where = f"meta-evse {path.name}"
    elif name in UPSTREAM_SCARTHGAP:
        layer, text = UPSTREAM_SCARTHGAP[name]
        version, where = Version(text), f"{layer} (scarthgap)"
    else:
        pytest.fail(f"{requirement}: no {name} recipe in meta-evse and none known upstream")
    assert requirement.specifier.contains(version, prereleases=True), (
        f"pyproject.toml wants {requirement}, {where} has {version}"
    )


def test_recipe_version_and_build_class_match_pyproject() -> None:
    recipe = evse_recipe()
    assert recipe.stem == f"evse_{PYPROJECT['project']['version']}"
    backend = PYPROJECT["build-system"]["build-backend"]
    inherits = " ".join(re.findall(r"^inherit\s+(.*)$", recipe.read_text(), re.M)).split()
    assert BACKEND_CLASSES[backend] in inherits
    assert "systemd" in inherits


def test_recipe_ships_service_and_conffile() -> None:
    recipe = evse_recipe()
    text = recipe.read_text()
    assert variable(recipe, "SYSTEMD_SERVICE:${PN}") == "evse.service"
    assert variable(recipe, "CONFFILES:${PN}") == "${sysconfdir}/evse/evse.toml"
    assert "${S}/config/evse.toml" in text and "${S}/systemd/evse.service" in text


def test_layer_conf() -> None:
    conf = (LAYER / "conf" / "layer.conf").read_text()
    assert re.search(r'^LAYERSERIES_COMPAT_evse = "scarthgap"$', conf, re.M)
    depends = re.search(r'^LAYERDEPENDS_evse = "(.*)"$', conf, re.M)
    assert depends and {"core", "meta-python"} <= set(depends.group(1).split())


def test_packagegroup_pulls_in_evse() -> None:
    group = LAYER / "recipes-evse" / "packagegroups" / "packagegroup-evse.bb"
    assert "evse" in variable(group, "RDEPENDS:${PN}").split()


def test_oelint_adv_reports_nothing() -> None:
    oelint = shutil.which("oelint-adv", path=str(Path(sys.executable).parent)) or shutil.which(
        "oelint-adv"
    )
    assert oelint, "oelint-adv missing: it is in the [test] extra of pyproject.toml"
    files = sorted(str(p) for p in LAYER.glob("recipes-*/*/*.bb*"))
    command = [oelint, "--release", "scarthgap", "--quiet", "--hide", "info"]
    for rule in OELINT_SUPPRESS:
        command += ["--suppress", rule]
    result = subprocess.run(
        [*command, *files], capture_output=True, text=True, check=False, timeout=120
    )
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not findings, findings
