#!/usr/bin/env python3
"""Generate the typed settings classes from the configuration schema (evse.config_schema).

    scripts/gen_settings.py            # rewrite hal/settings.py and evse/settings.py
    scripts/gen_settings.py --check    # exit 1 if either file is stale

The schema is the one source of truth for every key's type, default, unit and range; code
reads the frozen dataclasses generated here (``settings.contactor.fault_after_s``), never
``table.get(key, default)`` with a second copy of the default. Each schema table with an
``x-class`` becomes a dataclass: numbers ``float``, integers ``int``, enums ``Literal``,
string lists ``tuple[str, ...]``, nested tables their own class; required keys have no
default. An ``x-class`` with a dot (``evse.iec61851.Iec61851Settings``) names a hand-written
class, which ``tests/test_config.py`` checks against the schema instead.

``hal/settings.py`` holds the hardware tables (``[hardware]``, ``[[connector]]`` and what is
below it): hal may not import evse, so its settings live in hal. ``evse/settings.py`` holds
the rest.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evse.config_schema import SCHEMA  # noqa: E402

Schema = dict[str, Any]

#: Output file → (docstring, top-level schema tables it holds).
TARGETS: dict[str, tuple[str, list[Schema]]] = {
    "hal/settings.py": (
        "Typed hardware settings: ``[hardware]`` and ``[[connector]]`` with everything below "
        "them.\n\nBoard and meter backends receive these (see :mod:`hal.registry`); units and "
        "ranges are in\n``docs/configuration.md``. Values are validated by the configuration "
        "loader before they get\nhere; the defaults are the schema's.",
        [SCHEMA["properties"]["hardware"], SCHEMA["properties"]["connector"]["items"]],
    ),
    "evse/settings.py": (
        "Typed settings of the core: ``[station]``, ``[ocpp]``, ``[ocpp201]``, ``[logging]``,\n"
        "``[system]``, ``[security]``.\n\n"
        "``[iec61851]`` is :class:`evse.iec61851.Iec61851Settings` (hand-written, checked "
        "against the\nschema by the tests); the hardware tables are in :mod:`hal.settings`.",
        [SCHEMA["properties"][k] for k in ("station", "ocpp", "ocpp201", "logging",
                                                  "system", "security")],
    ),
}


def _lit(value: Any) -> str:
    """A Python literal in the house style (double-quoted strings)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple):
        inner = ", ".join(_lit(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def _type(node: Schema, classes: dict[str, Schema]) -> str:
    if "enum" in node:
        return "Literal[" + ", ".join(_lit(v) for v in node["enum"]) + "]"
    kind = node.get("type")
    if kind == "object":
        if "x-class" in node:
            classes.setdefault(node["x-class"], node)
            return str(node["x-class"])
        return "Mapping[str, bool | int | str]"
    if kind == "array":
        return f"tuple[{_type(node['items'], classes)}, ...]"
    return {"number": "float", "integer": "int", "string": "str", "boolean": "bool"}[str(kind)]


def _default(node: Schema, kind: str) -> str | None:
    if node.get("type") == "object":
        if "x-class" in node:
            return f"field(default_factory={node['x-class']})" if "default" in node else "None"
        return "field(default_factory=dict)"
    if "default" not in node:
        return None
    value = node["default"]
    if value is None:  # optional key whose absence means "derived" (documented per key)
        return "None"
    if isinstance(value, list):
        return _lit(tuple(value))
    if kind == "float":
        return repr(float(value))
    return _lit(value)


def _wrap(text: str, first: str, rest: str, width: int = 96) -> list[str]:
    lines, line = [], first
    for word in text.split():
        if len(line) + 1 + len(word) > width and line.strip() not in ("#:", '"""'):
            lines.append(line)
            line = rest
        line += ("" if line.endswith(('"""', " ")) else " ") + word
    lines.append(line)
    return lines


def _comment(node: Schema) -> list[str]:
    text = str(node.get("description", "")).replace("`", "")
    if node.get("x-unit"):
        text += f" [{node['x-unit']}]"
    return _wrap(text, "    #:", "    #:")


def _class(name: str, node: Schema, classes: dict[str, Schema]) -> list[str]:
    required = set(node.get("required", []))
    out = ["", "", "@dataclass(frozen=True, kw_only=True)", f"class {name}:"]
    doc = str(node.get("x-class-doc", node.get("description", ""))).replace("`", "")
    lines = _wrap(doc, '    """', "    ")
    if len(lines) == 1 and len(lines[0]) <= 93:
        out.append(lines[0] + '"""')
    else:
        out.extend([*lines, '    """'])
    for key, sub in node["properties"].items():
        kind = _type(sub, classes)
        default = None if key in required else _default(sub, kind)
        if default == "None":
            kind += " | None"
        out.append("")
        out.extend(_comment(sub))
        line = f"    {key}: {kind}" + (f" = {default}" if default is not None else "")
        if len(line) > 100 and isinstance(sub.get("default"), list):
            # A long list default: one item per line (the house line length is 100).
            out.append(f"    {key}: {kind} = (")
            out.extend(f"        {_lit(v)}," for v in sub["default"])
            out.append("    )")
        else:
            out.append(line)
    return out


def _emitted(path: str) -> list[str]:
    """The class names generated into ``path``, dependencies first."""
    _doc, roots = TARGETS[path]
    names: list[str] = []

    def walk(node: Schema) -> None:
        name = str(node["x-class"])
        if name in names:
            return
        nested: dict[str, Schema] = {}
        _class(name, node, nested)
        for child in nested.values():
            walk(child)
        names.append(name)

    for root in roots:
        walk(root)
    return names


def render(path: str) -> str:
    """The generated text of ``path`` (a key of :data:`TARGETS`). A class an earlier
    target generates (e.g. ``MeterSettings`` for ``[station.grid_meter]``) is imported from
    it, not generated twice."""
    doc, roots = TARGETS[path]
    blocks: dict[str, list[str]] = {}
    earlier = list(TARGETS)[:list(TARGETS).index(path)]
    foreign = {name: other for other in earlier for name in _emitted(other)}
    used_foreign: dict[str, str] = {}

    def emit(node: Schema) -> None:
        name = str(node["x-class"])
        if name in foreign:
            used_foreign[name] = foreign[name]
            return
        if name in blocks:
            return
        nested: dict[str, Schema] = {}
        lines = _class(name, node, nested)
        for child in nested.values():  # dependencies first
            emit(child)
        blocks[name] = lines

    for root in roots:
        emit(root)
    text = [f'"""{doc}\n\nGenerated by scripts/gen_settings.py from evse/config_schema.py: '
            'do not edit by hand.\n"""', "", "from __future__ import annotations", ""]
    body = [line for lines in blocks.values() for line in lines]
    imports = []
    if any("Mapping[" in line for line in body):
        imports.append("from collections.abc import Mapping")
    imports.append("from dataclasses import dataclass" +
                   (", field" if any("field(" in line for line in body) else ""))
    if any("Literal[" in line for line in body):
        imports.append("from typing import Literal")
    for name, other in sorted(used_foreign.items()):
        module = other.removesuffix(".py").replace("/", ".")
        imports.extend(["", f"from {module} import {name}"])
    return "\n".join([*text, *imports, *body]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    stale = 0
    for path in TARGETS:
        file = ROOT / path
        text = render(path)
        current = file.read_text(encoding="utf-8") if file.exists() else ""
        if current == text:
            continue
        if args.check:
            stale = 1
            sys.stderr.write(f"{path} is stale; run scripts/gen_settings.py\n")
            sys.stderr.writelines(difflib.unified_diff(
                current.splitlines(True), text.splitlines(True), path, "generated"))
        else:
            file.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return stale


if __name__ == "__main__":
    sys.exit(main())
