"""Loading helper modules from tests/ by file path.

tests/ is no package, and putting it on sys.path would let its subfolders (tests/memory_store,
tests/flows) shadow the real packages, so a benchmark loads the one helper file it needs.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TESTS = Path(__file__).resolve().parents[1] / "tests"


def load(name: str) -> ModuleType:
    """tests/NAME.py as a module named NAME."""
    spec = importlib.util.spec_from_file_location(name, TESTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it is being run
    spec.loader.exec_module(module)
    return module
