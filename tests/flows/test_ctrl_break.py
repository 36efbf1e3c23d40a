"""`python -m flows serve` and `listen` stop on Ctrl-Break (Windows) as on Ctrl-C, instead of being ended at
once; simulated with the signal module's attributes (SIGBREAK played by SIGUSR2, which POSIX delivers)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

import flows.__main__ as command
from flows.orchestration import serving as serving_module


@pytest.mark.skipif(sys.platform == "win32", reason="SIGBREAK is simulated with SIGUSR2, which Windows lacks")
@pytest.mark.parametrize("argv", [["serve"], ["listen"]])
def test_ctrl_break_interrupts_as_ctrl_c_does(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR2, raising=False)
    pressed: list[str] = []

    def serving(prefect_yaml: Path, limit: int | None, listen_to_pipeline: bool) -> int:
        pressed.append("serve")
        os.kill(os.getpid(), signal.SIGUSR2)  # Ctrl-Break
        return 0

    def listening(*args: object) -> None:
        pressed.append("listen")
        os.kill(os.getpid(), signal.SIGUSR2)

    monkeypatch.setattr(command, "serve_deployments", serving)
    monkeypatch.setattr(command, "listen", listening)
    bounded: list[float] = []  # the real one would end this process a few seconds later
    monkeypatch.setattr(serving_module, "leave_within", bounded.append)
    before = signal.getsignal(signal.SIGUSR2)
    signal.signal(signal.SIGUSR2, lambda signum, frame: pressed.append("ended at once"))  # the default
    try:
        if argv == ["serve"]:
            with pytest.raises(KeyboardInterrupt):  # Prefect's serve ends on it, closing what it runs
                command.main(argv)
        else:
            assert command.main(argv) == 0, "listen stops its listener and ends"
    finally:
        signal.signal(signal.SIGUSR2, before)
    assert pressed == argv
    assert bounded == [serving_module.STOP_S], "the stop that Ctrl-Break starts is bounded"
