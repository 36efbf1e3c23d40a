"""Fixtures of the flow tests: generated secrets, the fake VRChat, a session-wide log recorder and a
registry of everything written (ledgers, cookie files) for the final leak scan.

They live here, not in conftest.py, so that mypy checks them: it knows one module per name, and
tests/conftest.py is the `conftest` it sees. tests/flows/conftest.py only imports them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_vrchat import FakeVRChat
from flow_harness import FakeClock, FakeSecrets, totp_fake


class LogRecorder(logging.Handler):
    """Keeps every formatted record (with tracebacks) of the whole session."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="session")
def fake_secrets() -> FakeSecrets:
    return FakeSecrets.generate()


@pytest.fixture(scope="session")
def log_recorder() -> Iterator[LogRecorder]:
    recorder = LogRecorder()
    root = logging.getLogger()
    root.addHandler(recorder)
    flows_logger = logging.getLogger("flows")
    flows_logger.setLevel(logging.DEBUG)
    yield recorder
    root.removeHandler(recorder)


@pytest.fixture(scope="session")
def written_files() -> list[Path]:
    """Data folders of every scenario, scanned for secrets at the end."""
    return []


@pytest.fixture
def data_dir(tmp_path: Path, written_files: list[Path], log_recorder: LogRecorder) -> Path:
    folder = tmp_path / "data"
    written_files.append(folder)
    return folder


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(fake_secrets: FakeSecrets, clock: FakeClock) -> Iterator[FakeVRChat]:
    with totp_fake(fake_secrets, clock) as server:
        yield server
