"""The flow tests' fixtures, defined (and type-checked) in flow_fixtures.py."""

from __future__ import annotations

from flow_fixtures import clock, data_dir, fake, fake_secrets, log_recorder, written_files

__all__ = ["clock", "data_dir", "fake", "fake_secrets", "log_recorder", "written_files"]
