"""docs/architecture.md stays true: the threads the code names, the module paths, the stage packages."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
PACKAGES = ("machine", "memory_store", "flows", "companion_settings")


def named_threads() -> set[str]:
    """Every thread name (or pool prefix) given in the voice process's code."""
    names: set[str] = set()
    for package in ("machine", "memory_store"):
        for path in (REPO / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            names.update(re.findall(r'threading\.Thread\([^)]*name="([\w-]+)"', text))
            names.update(re.findall(r'thread_name_prefix="([\w-]+)"', text))
    return names


def test_every_named_thread_is_on_the_page() -> None:
    threads = named_threads()
    assert len(threads) >= 8, threads
    missing = sorted(name for name in threads if f"| {name} |" not in PAGE)
    assert missing == [], f"threads missing from docs/architecture.md: {missing}"


def test_every_field_of_a_turn_record_has_an_owner_on_the_page() -> None:
    """The thread table says which thread writes each field of a turn's record (one writer each)."""
    from machine.turn_metrics import TurnRecord

    table = "\n".join(line for line in PAGE.splitlines() if line.startswith("| "))
    fields = [field.name for field in dataclasses.fields(TurnRecord)]
    assert [name for name in fields if f"`{name}`" not in table] == []


def test_every_module_path_on_the_page_exists() -> None:
    paths = set(re.findall(r"`((?:machine|memory_store|flows|companion_settings)/[\w/]*\.py)`", PAGE))
    assert paths, "the page names modules"
    assert sorted(p for p in paths if not (REPO / p).exists()) == []


def test_every_stage_package_is_listed() -> None:
    stages = sorted(p.name for p in (REPO / "machine").iterdir() if (p / "__init__.py").exists())
    assert stages, "machine/ has stage packages"
    assert [s for s in stages if f"`machine/{s}/`" not in PAGE] == []


def test_the_runtime_stays_small_at_the_top() -> None:
    """The tree explains the pipeline: machine/ holds few modules of its own, the rest is in stages."""
    top = sorted(p.name for p in (REPO / "machine").glob("*.py"))
    assert len(top) <= 9, top
    for package in (p for p in (REPO / "machine").iterdir() if (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
        assert doc and len(doc.splitlines()) == 1, f"machine/{package.name}: a one-line docstring"
