"""Forgetting on demand without SIGUSR1 (Windows has none): an OSC message to the bot's control port,
sent by `python -m machine forget`, forgets through the runtime's loop; and the stop signals as Windows
has them."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from chat_fakes import ConversationStandIn
from pythonosc.udp_client import SimpleUDPClient
from test_runtime import UntilStopped, make_runtime

from machine.__main__ import main
from machine.app import GivenAudio, Parts, open_app
from machine.audio.recorded import WavReplySink
from machine.ports import AudioSource
from machine.process import stop_signals
from machine.process.osc_control import (
    FORGET_ADDRESS,
    ControlPortError,
    NoBotAnswerError,
    OscControl,
    ask_to_forget,
)
from machine.process.stop_signals import StopSignals
from machine.runtime import Runtime
from machine.settings import ControlSettings, MachineSettings
from machine.turn_metrics import TurnRecord
from memory_store import MemoryStoreSettings


def free_udp_port() -> int:
    """A UDP port nothing listens on now (the system's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def control() -> ControlSettings:
    return ControlSettings(port=free_udp_port())


class Running:
    """A runtime on scripted parts, running in a thread until the test ends."""

    def __init__(self) -> None:
        self.runtime: Runtime = make_runtime([], [])[0]
        self.loop_thread: threading.Thread = threading.Thread(
            target=self.runtime.run, args=(UntilStopped(),), daemon=True
        )
        self.forgotten = threading.Event()
        self.forgotten_on: list[str] = []
        self.loop_thread.start()

    def forget_memory(self) -> None:
        self.forgotten_on.append(threading.current_thread().name)
        self.forgotten.set()

    def stop(self) -> None:
        self.runtime.stop()
        self.loop_thread.join(timeout=10)
        assert not self.loop_thread.is_alive()


@pytest.fixture
def running() -> Iterator[Running]:
    bot = Running()
    yield bot
    bot.stop()


def test_a_forget_sent_to_the_control_port_runs_through_the_loop(
    control: ControlSettings, running: Running
) -> None:
    with OscControl(control) as server:
        server.attach(running.runtime, running.forget_memory)
        assert ask_to_forget(control) == ("127.0.0.1", control.port)
        assert running.forgotten.wait(5), "the forget arrived"
    assert running.forgotten_on == [running.loop_thread.name], "run by the event loop, not the OSC thread"


def test_the_forget_command_says_the_bot_is_forgetting(
    control: ControlSettings,
    running: Running,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MACHINE_CONTROL__PORT", str(control.port))
    with OscControl(control) as server:
        server.attach(running.runtime, running.forget_memory)
        assert main(["forget"]) == 0
        assert running.forgotten.wait(5)
    assert (
        capsys.readouterr().out == f"Celeste (OSC 127.0.0.1:{control.port}) is forgetting the conversation\n"
    )


def test_the_forget_command_without_a_bot_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_udp_port()
    monkeypatch.setenv("MACHINE_CONTROL__PORT", str(port))
    assert main(["forget"]) == 1
    assert capsys.readouterr().err == (
        f"error: no bot listens on 127.0.0.1:{port} (machine.control): is it running, with this "
        "configuration?\n"
    )


def test_the_forget_command_with_control_off_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MACHINE_CONTROL__ENABLED", "false")
    assert main(["forget"]) == 2
    error = capsys.readouterr().err
    assert "machine.control.enabled is false" in error and "kill -USR1" in error


def test_a_bot_still_loading_does_not_answer_yet(control: ControlSettings) -> None:
    """Bound (the run is being built) but not attached: the sender hears nothing within its timeout."""
    with OscControl(control), pytest.raises(NoBotAnswerError, match="still loading its models"):
        ask_to_forget(control, timeout_s=0.3)


def test_a_port_in_use_is_a_clear_error_naming_the_setting(control: ControlSettings) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("127.0.0.1", control.port))
        with pytest.raises(ControlPortError) as raised, OscControl(control):
            pass
    message = str(raised.value)
    assert message.startswith(f"machine.control.port: cannot listen for OSC on 127.0.0.1:{control.port} (")
    assert "MACHINE_CONTROL__PORT" in message and "machine.control.enabled: false" in message


def test_a_host_not_of_this_machine_names_the_host_setting() -> None:
    settings = ControlSettings(host="192.0.2.1", port=free_udp_port())  # TEST-NET-1: no machine's own
    with (
        pytest.raises(ControlPortError, match=r"^machine\.control\.host: cannot listen"),
        OscControl(settings),
    ):
        pass


def test_the_port_is_free_and_the_thread_gone_once_closed(control: ControlSettings, running: Running) -> None:
    with OscControl(control) as server:
        server.attach(running.runtime, running.forget_memory)
        assert any(t.name == "osc-control" for t in threading.enumerate())
    assert not any(t.name == "osc-control" for t in threading.enumerate())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", control.port))


def test_an_avatar_button_forgets_when_it_turns_on(running: Running) -> None:
    settings = ControlSettings(port=free_udp_port(), avatar_parameter="CompanionForget")
    vrchat = SimpleUDPClient("127.0.0.1", settings.port)
    with OscControl(settings) as server:
        server.attach(running.runtime, running.forget_memory)
        vrchat.send_message("/avatar/parameters/CompanionForget", False)
        vrchat.send_message("/avatar/parameters/OtherToggle", True)
        vrchat.send_message(FORGET_ADDRESS + "/not-quite", True)
        assert not running.forgotten.wait(0.5), "off, another parameter, another address: nothing"
        vrchat.send_message("/avatar/parameters/CompanionForget", True)
        assert running.forgotten.wait(5)


@pytest.mark.models  # the memory block loads the embedding model
def test_the_composition_root_serves_the_control_port_for_a_run_with_a_memory_block(
    settings: MachineSettings, memory_settings: MemoryStoreSettings, tmp_path: Path
) -> None:
    control = ControlSettings(port=free_udp_port())
    asked: list[Callable[[], None]] = []

    class StandIn(ConversationStandIn):
        def forget(self, forget_memory: Callable[[], None]) -> None:
            asked.append(forget_memory)

        def run(
            self, source: AudioSource, on_listening: Callable[[], None] = lambda: None
        ) -> list[TurnRecord]:
            return []

    own = settings.model_copy(update={"control": control})
    io = GivenAudio(UntilStopped(), WavReplySink(tmp_path, realtime=False), interactive=True)
    parts = Parts(conversation=lambda memory, sink, on_turn: StandIn())
    with open_app(own, memory_settings, io, lambda record: None, parts=parts):
        ask_to_forget(control)
        assert len(asked) == 1 and callable(asked[0])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", control.port))  # closed with the run


SIMULATED_WITH_POSIX_SIGNALS = pytest.mark.skipif(
    sys.platform == "win32", reason="Windows' signal set is simulated with SIGUSR2, which Windows lacks"
)


@SIMULATED_WITH_POSIX_SIGNALS
def test_windows_signals_ctrl_break_stops_and_no_sigusr1_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has SIGINT, SIGTERM and SIGBREAK (Ctrl-Break) but no SIGUSR1: simulated here with the
    signal module's attributes (SIGBREAK played by SIGUSR2, a number POSIX can deliver)."""
    monkeypatch.delattr(signal, "SIGUSR1")
    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR2, raising=False)
    assert stop_signals._forget_signal() is None
    before = signal.getsignal(signal.SIGUSR2)
    running = Running()
    with StopSignals() as signals:
        signals.attach(running.runtime, running.forget_memory)
        assert signal.getsignal(signal.SIGUSR2) not in (before, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGUSR2)  # Ctrl-Break
        running.loop_thread.join(timeout=1.0)
        assert not running.loop_thread.is_alive(), "stopped within a second"
        assert signals.asked_at is not None
    assert signal.getsignal(signal.SIGUSR2) == before, "put back"
    assert not running.forgotten.is_set()


@SIMULATED_WITH_POSIX_SIGNALS
def test_ctrl_break_while_the_run_is_built_unwinds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the runtime is attached (models loading), Ctrl-Break raises SystemExit, so what was opened
    closes in reverse, as SIGTERM does."""
    monkeypatch.delattr(signal, "SIGUSR1")
    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR2, raising=False)
    with pytest.raises(SystemExit) as raised, StopSignals():
        os.kill(os.getpid(), signal.SIGUSR2)
    assert raised.value.code == 128 + signal.SIGUSR2
