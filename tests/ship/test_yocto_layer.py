"""meta-evse does things the OpenEmbedded way (issue 15, "Yocto").

- No recipe of meta-evse re-declares a recipe that openembedded-core or meta-openembedded
  (scarthgap) ship: checked against tests/ship/data/scarthgap-recipes.tsv (every recipe of
  both, generated from the scarthgap branches by scripts/gen_upstream_recipes.py; the file
  names the commits).
- What evse needs newer than scarthgap lives in meta-evse-backports (priority 1, below every
  layer) and is selected by PREFERRED_VERSION_* in evse-backports.inc; only what is needed.
- The versions an image gets satisfy pyproject.toml; RDEPENDS name every runtime dependency
  and the standard library packages (python3-manifest.json) of every module the stack
  imports, never python3-modules; every RDEPENDS entry exists.
- Sources are pinned (SRCREV, no AUTOREV), changes to upstream files are patches (no sed on
  pyproject.toml), the evse patch applies, a ptest package runs the tests on the target.
- oelint-adv --release scarthgap reports nothing.
"""

from __future__ import annotations

import ast
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
BACKPORTS = ROOT / "yocto-layer" / "meta-evse-backports"
BACKPORTS_INC = BACKPORTS / "conf" / "distro" / "include" / "evse-backports.inc"
DATA = Path(__file__).parent / "data"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

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

#: Layer priorities of the scarthgap layers meta-evse builds with (their conf/layer.conf):
#: core 5, openembedded-layer 5, meta-python 5. Backports must lose against all of them.
UPSTREAM_LOWEST_PRIORITY = 5


def upstream_recipes() -> dict[str, tuple[str, str]]:
    """Recipe name → (version, layer) of every scarthgap recipe (the checked-in list)."""
    out: dict[str, tuple[str, str]] = {}
    for line in (DATA / "scarthgap-recipes.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version, layer = line.split("\t")
            out.setdefault(name, (version, layer))
    return out


def stdlib_packages() -> dict[str, str]:
    """Standard library module → python3-* package (python3-manifest.json, scarthgap)."""
    out = {}
    for line in (DATA / "scarthgap-python3-modules.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            module, package = line.split("\t")
            out[module] = package
    return out


def python3_packages() -> set[str]:
    text = (DATA / "scarthgap-python3-packages.txt").read_text()
    return {line for line in text.splitlines() if line and not line.startswith("#")}


def recipe_name(requirement: Requirement) -> str:
    """OpenEmbedded's name for a PyPI distribution: python3-<name>, "python-" dropped."""
    return "python3-" + str(canonicalize_name(requirement.name)).removeprefix("python-")


def recipes_of(layer: Path) -> dict[str, tuple[str, Path]]:
    """Recipe name → (version or "", file) for every recipe of ``layer``."""
    out = {}
    for path in layer.glob("recipes-*/*/*.bb"):
        name, _, version = path.stem.partition("_")
        out[name] = (version, path)
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


def preferred_versions() -> dict[str, str]:
    text = BACKPORTS_INC.read_text()
    return dict(re.findall(r'^PREFERRED_VERSION_(\S+)\s*=\s*"([^"]+)"', text, re.M))


def image_version(name: str) -> tuple[Version, str]:
    """The version of recipe ``name`` an image with meta-evse (and evse-backports.inc) gets."""
    ours = recipes_of(LAYER)
    if name in ours:
        return Version(ours[name][0]), f"meta-evse {ours[name][1].name}"
    backports = recipes_of(BACKPORTS)
    if name in backports and name in preferred_versions():
        return Version(backports[name][0]), f"meta-evse-backports {backports[name][1].name}"
    upstream = upstream_recipes()
    if name in upstream:
        version, layer = upstream[name]
        return Version(version), f"{layer} (scarthgap)"
    pytest.fail(f"no {name} recipe in meta-evse, meta-evse-backports or scarthgap")


def all_recipe_files() -> list[Path]:
    return sorted([*LAYER.glob("recipes-*/*/*.bb"), *BACKPORTS.glob("recipes-*/*/*.bb")])


# -- no shadowing -------------------------------------------------------------------------


def test_upstream_list_is_the_real_thing() -> None:
    """The test data is the generated list, not a hand-picked few (guards the next test)."""
    upstream = upstream_recipes()
    assert len(upstream) > 2500
    assert upstream["python3-websockets"] == ("12.0", "openembedded-core/meta")
    assert upstream["python3-pymodbus"] == ("3.6.7", "meta-openembedded/meta-python")


def test_meta_evse_shadows_no_upstream_recipe() -> None:
    upstream = upstream_recipes()
    shadowing = {
        name: f"{path.name} vs {upstream[name][1]} {upstream[name][0]}"
        for name, (_, path) in recipes_of(LAYER).items()
        if name in upstream
    }
    assert not shadowing, (
        f"meta-evse re-declares scarthgap recipes: {shadowing}; use upstream's, or put a "
        "needed newer version into meta-evse-backports with PREFERRED_VERSION"
    )


def test_backports_are_low_priority_selected_and_needed() -> None:
    conf = (BACKPORTS / "conf" / "layer.conf").read_text()
    priority = re.search(r'^BBFILE_PRIORITY_evse-backports = "(\d+)"$', conf, re.M)
    assert priority and int(priority.group(1)) < UPSTREAM_LOWEST_PRIORITY
    assert re.search(r'^LAYERSERIES_COMPAT_evse-backports = "scarthgap"$', conf, re.M)
    upstream = upstream_recipes()
    preferred = preferred_versions()
    requirements = {recipe_name(r): r for r in runtime_requirements()}
    backports = recipes_of(BACKPORTS)
    assert set(preferred) == set(backports), "one PREFERRED_VERSION per backport"
    for name, (version, path) in backports.items():
        assert name in upstream, f"{path.name}: not in scarthgap, so it belongs in meta-evse"
        assert preferred[name] == version, f"{BACKPORTS_INC.name}: {name} {preferred[name]}"
        assert Version(version) > Version(upstream[name][0])
        # Needed: scarthgap's own version does not satisfy pyproject.toml.
        req = requirements[name]
        assert not req.specifier.contains(upstream[name][0]), (
            f"{req}: scarthgap's {upstream[name][0]} is enough, drop {path.name}"
        )


# -- versions and RDEPENDS ----------------------------------------------------------------


@pytest.mark.parametrize("requirement", runtime_requirements(), ids=str)
def test_image_versions_satisfy_pyproject(requirement: Requirement) -> None:
    version, where = image_version(recipe_name(requirement))
    assert requirement.specifier.contains(version, prereleases=True), (
        f"pyproject.toml wants {requirement}, {where} has {version}"
    )


def test_every_runtime_dependency_is_in_rdepends() -> None:
    rdepends = set(variable(evse_recipe(), "RDEPENDS:${PN}").split())
    missing = [
        f"{req} → {recipe_name(req)}"
        for req in runtime_requirements()
        if recipe_name(req) not in rdepends
    ]
    assert not missing, f"add to RDEPENDS:${{PN}} in {evse_recipe().name}: {missing}"


def imported_stdlib_modules() -> set[str]:
    modules = set()
    for package in ("evse", "hal", "ocpp_client"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return {m for m in modules if m in sys.stdlib_module_names and m != "__future__"}


def test_rdepends_cover_the_standard_library_the_stack_imports() -> None:
    rdepends = set(variable(evse_recipe(), "RDEPENDS:${PN}").split())
    assert "python3-modules" not in rdepends, "name the packages, not the whole library"
    packages = stdlib_packages()
    needed = {m: packages.get(m, "python3-core") for m in imported_stdlib_modules()}
    missing = {m: p for m, p in needed.items() if p not in rdepends}
    assert not missing, f"add to RDEPENDS:${{PN}} in {evse_recipe().name}: {missing}"


def test_default_pin_factory_libraries_are_rdepends() -> None:
    """lgpio (the default pin_factory) from meta-evse, spidev (SPI ADCs) from meta-python."""
    rdepends = set(variable(evse_recipe(), "RDEPENDS:${PN}").split())
    assert {"python3-lgpio", "python3-spidev"} <= rdepends
    assert "python3-lgpio" in recipes_of(LAYER) and "lgpio" in recipes_of(LAYER)
    assert "python3-spidev" in upstream_recipes()
    assert "python3-spidev" not in recipes_of(LAYER)


def test_every_rdepends_entry_exists() -> None:
    ours = set(recipes_of(LAYER)) | set(recipes_of(BACKPORTS))
    known = (set(upstream_recipes()) | ours | python3_packages()
             | {f"{name}-{sub}" for name in ours for sub in ("doc", "dev", "ptest")})
    for path in all_recipe_files():
        text = path.read_text()
        for var in re.findall(r"^(R(?:DEPENDS|RECOMMENDS):\$\{PN\}(?:-ptest)?)\s", text, re.M):
            unknown = set(variable(path, var).split()) - known
            assert not unknown, f"{path.name} {var}: no such recipe or package {unknown}"


# -- sources, patches, ptest --------------------------------------------------------------


@pytest.mark.parametrize("path", all_recipe_files(), ids=lambda p: p.name)
def test_sources_pinned_and_patched_not_sedded(path: Path) -> None:
    text = path.read_text()
    assert "AUTOREV" not in text
    assert not re.search(r"\bsed\b[^\n]*pyproject", text), "use a patch, not sed"
    if "git://" in text:
        assert re.search(r'^SRCREV = "[0-9a-f]{40}"$', text, re.M), "pin SRCREV"
    elif re.search(r"^inherit .*\bpypi\b", text, re.M):
        assert re.search(r'^SRC_URI\[sha256sum\] = "[0-9a-f]{64}"$', text, re.M)
    for patch in re.findall(r"file://([^\s;\"]+\.patch)", text):
        local = path.parent / path.stem.split("_")[0] / patch
        assert local.is_file(), f"{path.name}: {patch} missing"
        header = local.read_text().split("\n---\n", 1)[0]
        assert "Upstream-Status:" in header and "Signed-off-by:" in header, patch


def evse_patch() -> Path:
    patches = list((LAYER / "recipes-evse" / "evse" / "evse").glob("*.patch"))
    assert len(patches) == 1, patches
    return patches[0]


def applies(patch: Path, pyproject_text: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    (tmp / "pyproject.toml").write_text(pyproject_text)
    return subprocess.run(["patch", "--dry-run", "-p1", "-F0", "-i", str(patch)], cwd=tmp,
                          capture_output=True, text=True, check=False)


def test_evse_patch_applies_without_fuzz(tmp_path: Path) -> None:
    if shutil.which("patch") is None:
        pytest.skip("patch(1) not installed")
    result = applies(evse_patch(), (ROOT / "pyproject.toml").read_text(), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # And to the pyproject.toml of the commit the recipe builds, when this clone has it.
    srcrev = variable(evse_recipe(), "SRCREV")
    shown = subprocess.run(["git", "show", f"{srcrev}:pyproject.toml"], cwd=ROOT,
                           capture_output=True, text=True, check=False)
    if shown.returncode == 0:
        result = applies(evse_patch(), shown.stdout, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_ptest_runs_the_suite_on_target() -> None:
    recipe = evse_recipe()
    text = recipe.read_text()
    assert re.search(r"^inherit .*\bptest\b", text, re.M)
    assert "file://run-ptest" in text and "do_install_ptest()" in text
    run_ptest = recipe.parent / "evse" / "run-ptest"
    assert run_ptest.stat().st_mode & 0o111
    script = run_ptest.read_text()
    assert "pytest --automake" in script
    for ignored in re.findall(r"--ignore=(\S+)", script):
        assert (ROOT / ignored).exists(), ignored
    assert {"python3-pytest", "python3-pytest-asyncio", "python3-unittest-automake-output"} <= (
        set(variable(recipe, "RDEPENDS:${PN}-ptest").split()))


# -- recipe shape and lint ----------------------------------------------------------------


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
    files = sorted(str(p) for layer in (LAYER, BACKPORTS)
                   for p in layer.glob("recipes-*/*/*.bb*"))
    command = [oelint, "--release", "scarthgap", "--quiet", "--hide", "info"]
    for rule in OELINT_SUPPRESS:
        command += ["--suppress", rule]
    result = subprocess.run(
        [*command, *files], capture_output=True, text=True, check=False, timeout=120
    )
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not findings, findings
