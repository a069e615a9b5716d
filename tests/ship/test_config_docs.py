"""docs/configuration.md is generated from the schema and must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.script_loader import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_config_docs.py"


def load_generator() -> ModuleType:
    return load_script("scripts/gen_config_docs.py")


def test_checked_in_reference_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_schema_key_is_documented() -> None:
    from evse.config_schema import SCHEMA

    text = (ROOT / "docs" / "configuration.md").read_text()

    def walk(node: dict, path: str) -> None:
        if node.get("type") == "array" and "properties" in node.get("items", {}):
            node = node["items"]
        for key, sub in node.get("properties", {}).items():
            if "properties" in sub or "properties" in sub.get("items", {}):
                assert f"[{path}{key}]" in text, f"no section for {path}{key}"
                walk(sub, f"{path}{key}.")
            else:
                assert f"| `{key}` |" in text, f"{path}{key} undocumented"

    walk(SCHEMA, "")


def test_check_fails_when_stale(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text("# old\n")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--output", str(stale)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 1
    assert "stale" in result.stderr


def test_generator_is_generic_over_schema_constructs() -> None:
    gen = load_generator()
    schema = {
        "type": "object",
        "required": ["a"],
        "$defs": {"port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 502,
                           "x-unit": "port", "description": "TCP port."}},
        "properties": {
            "a": {"type": "object", "description": "Table A.", "required": ["k"], "properties": {
                "k": {"enum": ["x", "y"], "description": "Pick one."},
                "port": {"$ref": "#/$defs/port"},
                "ratio": {"type": "number", "exclusiveMinimum": 0, "default": 0.5,
                          "description": "A | ratio <1>."},
                "inner": {"type": "object", "description": "Inner.", "properties": {
                    "deep": {"type": "boolean", "default": True, "description": "Deep key."},
                }},
            }},
            "items": {"type": "array", "minItems": 1, "description": "Items.",
                      "items": {"type": "object", "description": "One item.", "properties": {
                          "n": {"type": ["integer", "string"], "description": "N."},
                      }}},
        },
    }
    text = gen.render(schema)
    assert "| `k` | enum | *(required)* |  | one of \"x\", \"y\" | Pick one. |" in text
    assert "| `port` | integer | `502` | port | [1, 65535] | TCP port. |" in text
    assert "(0, ∞]" in text and "A \\| ratio &lt;1&gt;." in text
    assert "## `[a.inner]`" in text and "| `deep` | boolean | `true` |" in text
    assert "## `[[items]]`" in text and "at least 1 table" in text
    assert "| `n` | integer or string |" in text
