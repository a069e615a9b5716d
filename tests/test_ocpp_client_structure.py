"""``ocpp_client`` shape (issue 10): shared parts know no protocol version, handlers hold no
back-reference to the adapter, no import circle (imports under ``TYPE_CHECKING`` and inside
functions included), and the daemon picks the adapter package by ``[ocpp] version``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from evse import daemon as daemon_module
from evse.config import ConfigError
from evse.daemon import load_checked_config
from tests.conftest import ROOT, write_config

PACKAGE = ROOT / "ocpp_client"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (``a.b.c`` for ``from a.b import c``
    when ``a.b.c`` is a module of ours)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists():
                    found.add(candidate)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(p) if m in modules} for name, p in modules.items()}


def test_shared_parts_know_no_protocol_version() -> None:
    for path in PACKAGE.glob("*.py"):
        versioned = {m for m in _imports(path)
                     if m.startswith(("ocpp_client.v16", "ocpp.v16", "ocpp.v201"))}
        assert not versioned, f"{path.name} imports {versioned}"


def test_handlers_hold_no_back_reference_to_the_adapter() -> None:
    for version in ("v16", "v201"):
        for name in ("charge_point", "commands", "events"):
            imported = _imports(PACKAGE / version / f"{name}.py")
            assert f"ocpp_client.{version}.adapter" not in imported, (version, name)


def test_unknown_ocpp_version_is_a_config_error_naming_the_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, "ws://127.0.0.1:9/", ocpp_extra='version = "2.1"')
    with pytest.raises(ConfigError) as schema_error:
        load_checked_config(str(path))
    assert any("ocpp.version" in line and "2.1" in line for line in schema_error.value.errors)
    # A version the schema allows but no adapter package serves: the daemon's own error.
    monkeypatch.setattr(daemon_module, "PROTOCOL_ADAPTERS", {"2.0.1": "ocpp_client.v201"})
    path = write_config(tmp_path, "ws://127.0.0.1:9/")
    with pytest.raises(ConfigError) as error:
        load_checked_config(str(path))
    assert any("ocpp.version" in line and "'1.6'" in line for line in error.value.errors)
