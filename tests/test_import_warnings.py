"""Importing the runtime's speech-to-text prints nothing: no torchcodec/FFmpeg warning at every start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.models  # importing whisperx loads torch

REPO = Path(__file__).resolve().parents[1]


def test_importing_the_transcriber_prints_no_torchcodec_warning() -> None:
    imported = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import machine.backends.whisperx_transcriber"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=120,
    )
    assert "torchcodec" not in imported.stderr.lower()
    assert "loading traceback" not in imported.stderr
