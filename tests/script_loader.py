"""Load a script of the repository (``benchmarks/*.py``, ``scripts/*.py``) as a module, so
a test can call its functions: those folders are not packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative_path: str) -> ModuleType:
    """Execute ``ROOT / relative_path`` as a fresh module named after the file.

    Raises:
        FileNotFoundError: there is no such file.
    """
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
