"""Layer rules of DESIGN.md ("Layers and data flow"), checked on the source with ``ast``.

Every ``import`` counts: top level, inside functions, and under ``if TYPE_CHECKING:``.

- ``evse`` and ``hal`` import nothing from ``ocpp`` (the library) or ``ocpp_client``.
- ``hal`` imports nothing from ``evse``.
- ``evse`` imports from ``hal`` only its interfaces: the modules directly in ``hal/``
  (``hal/board.py``, ``hal/pilot.py``, ``hal/meter.py``, ... and ``hal/registry.py``, which
  loads the concrete backends by name). The backend packages (``hal/gpio``, ``hal/meters``,
  ``hal/sim``, ``hal/readers``, any future one) are reached only through the registry.
- ``ocpp_client`` never imports a hal backend package either.
- No import circle among the modules of ``evse``, ``hal`` and ``ocpp_client``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("evse", "hal", "ocpp_client")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES.get(module, Path()).name == "__init__.py"


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """Every module ``module`` imports (absolute names), with the line number.

    ``from a.b import c`` counts as importing ``a.b.c`` when that is a module of ours,
    otherwise as importing ``a.b``.
    """
    path = MODULES[module]
    yield from _imports_in(path.read_text(encoding="utf-8"), module, _is_package(module))


def _imports_in(source: str, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield (candidate if candidate in MODULES else base), node.lineno


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _violations(source_pkg: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for module in MODULES:
        if not _in(module, source_pkg):
            continue
        for target, line in imports_of(module):
            if any(_in(target, f) for f in forbidden):
                found.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}")
    return found


def _hal_backend_packages() -> tuple[str, ...]:
    return tuple(sorted(m for m in MODULES if m.count(".") == 1 and m.startswith("hal.")
                        and _is_package(m)))


def test_the_rules_see_the_source() -> None:
    # The checks below would pass vacuously if the walk found nothing.
    assert {"evse.station", "hal.board", "hal.registry", "ocpp_client.queue"} <= set(MODULES)
    assert {"hal.gpio", "hal.meters", "hal.sim", "hal.readers"} <= set(_hal_backend_packages())
    assert "hal.board" in {module for module, _ in imports_of("evse.station")}


def test_an_import_inside_type_checking_or_a_function_counts() -> None:
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hal.sim import board\n"
              "def f():\n    import ocpp_client.queue\n    from ..gpio import pins\n")
    found = [name for name, _ in _imports_in(source, "hal.meters.x", is_package=False)]
    assert found == ["typing", "hal.sim.board", "ocpp_client.queue", "hal.gpio.pins"]


@pytest.mark.parametrize(("package", "forbidden"), [
    ("evse", ("ocpp", "ocpp_client")),
    ("hal", ("ocpp", "ocpp_client", "evse")),
])
def test_layers_import_nothing_above_them(package: str, forbidden: tuple[str, ...]) -> None:
    assert _violations(package, forbidden) == []


@pytest.mark.parametrize("package", ["evse", "ocpp_client"])
def test_only_hal_interfaces_above_hal(package: str) -> None:
    assert _violations(package, _hal_backend_packages()) == []


def _cycles() -> list[list[str]]:
    graph: dict[str, set[str]] = {
        m: {t for t, _ in imports_of(m) if t in MODULES and t != m} for m in MODULES}
    # Tarjan's strongly connected components: any component of 2+ modules is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_import_circle() -> None:
    assert _cycles() == []


def test_hal_reads_no_table_with_get_and_a_default() -> None:
    # Settings arrive typed with the schema's defaults (hal/settings.py); a
    # ``table.get("key", default)`` would be a second copy of a default.
    found = []
    for module, path in MODULES.items():
        if not _in(module, "hal"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "get" and len(node.args) == 2
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_core_vocabulary_is_its_own() -> None:
    """No OCPP 1.6 status / error code / reason spelled in the core (DESIGN.md: every
    mapping lives in an adapter package)."""
    ocpp_words = ("ChargePointStatus", "ChargePointErrorCode", "SuspendedEVSE",
                  "GroundFailure", "EmergencyStop", "DeAuthorized", "PowerSwitchFailure",
                  "ground_failure", "emergency_stop", "power_switch_failure")
    found = []
    for module, path in MODULES.items():
        if not _in(module, "evse"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = (node.id if isinstance(node, ast.Name) else
                    node.attr if isinstance(node, ast.Attribute) else
                    node.value if isinstance(node, ast.Constant)
                    and isinstance(node.value, str) else "")
            if text in ocpp_words:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text}")
    assert found == []
