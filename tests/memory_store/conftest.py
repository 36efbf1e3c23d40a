"""The memory-store tests' fixtures, defined (and type-checked) in memory_fixtures.py."""

from __future__ import annotations

from memory_fixtures import clock, minilm, open_system, settings_from_the_test_only, store_dir

__all__ = ["clock", "minilm", "open_system", "settings_from_the_test_only", "store_dir"]
