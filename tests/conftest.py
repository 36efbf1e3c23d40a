"""Shared fixtures: the settings and (session-scoped, loaded on first use) the real bundled models."""

from __future__ import annotations

import re
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from machine.app import Parts
from machine.audio.files import to_mono_16k
from machine.settings import MachineSettings, load_settings
from memory_store import MemoryStoreSettings
from memory_store import load_settings as load_memory_settings

if TYPE_CHECKING:
    from machine.backends.piper_synthesizer import PiperSynthesizer
    from machine.backends.transformers_chat import TransformersChatModel
    from machine.backends.whisperx_transcriber import WhisperxTranscriber

REPO = Path(__file__).resolve().parents[1]


_MODULE_MARKS = re.compile(r"^pytestmark = .*$", re.MULTILINE)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A test module marked as a whole (`pytestmark = pytest.mark.models`) with a marker that `-m` rules
    out (`not models`) is not even imported: `make unit` pays no torch, transformers or Prefect import for
    tests it does not run."""
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    expression = str(config.getoption("markexpr", "") or "")
    found = _MODULE_MARKS.search(collection_path.read_text(encoding="utf-8"))
    marks = re.findall(r"pytest\.mark\.(\w+)", found.group(0)) if found is not None else []
    if any(f"not {mark}" in expression for mark in marks if mark != "skipif"):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On Windows, tests that need POSIX process control (`posix`) are skipped, saying why."""
    if sys.platform != "win32":
        return
    skip = pytest.mark.skip(reason="needs POSIX process control (fork, SIGKILL, SIGUSR1, process groups)")
    for item in items:
        if "posix" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def private_memory_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test that opens InfiniMemory through the configuration gets a store of its own, not the
    player's data folder, and its runs listen for OSC forgets on a free port, not a running bot's."""
    patch = pytest.MonkeyPatch()
    patch.setenv("MEMORY_STORE_PATH", str(tmp_path_factory.mktemp("memory")))
    patch.setenv("MEMORY_STORE_SESSIONS__EXPIRY_CHECK_EVERY_S", "3600")  # no expiry check mid-test
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        patch.setenv("MACHINE_CONTROL__PORT", str(probe.getsockname()[1]))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def settings() -> MachineSettings:
    """The shipped default configuration."""
    return load_settings(REPO / "conf" / "default.yaml")


@pytest.fixture(scope="session")
def memory_settings() -> MemoryStoreSettings:
    """The shipped memory_store section (its store folder redirected by `private_memory_store`)."""
    return load_memory_settings(REPO / "conf" / "default.yaml")


@pytest.fixture(scope="session")
def synthesizer(settings: MachineSettings) -> PiperSynthesizer:

    from machine.backends.piper_synthesizer import PiperSynthesizer

    return PiperSynthesizer(settings.synthesizer)


@pytest.fixture(scope="session")
def transcriber(settings: MachineSettings) -> WhisperxTranscriber:

    from machine.backends.whisperx_transcriber import WhisperxTranscriber

    return WhisperxTranscriber(settings.transcriber, settings.bot_name)


@pytest.fixture(scope="session")
def chat_model(settings: MachineSettings) -> TransformersChatModel:

    from machine.backends.transformers_chat import TransformersChatModel

    return TransformersChatModel(settings.chat_model)


@pytest.fixture(scope="session")
def speak_16k(synthesizer: PiperSynthesizer) -> Iterator[Callable[[str], np.ndarray]]:
    """Text → 16 kHz mono float32 speech, spoken by the bundled Piper voice."""

    def speak(text: str) -> np.ndarray:
        audio = np.concatenate([chunk.samples for chunk in synthesizer.synthesize(text)])
        return to_mono_16k(audio, synthesizer.sample_rate)

    yield speak


@pytest.fixture(scope="session")
def loaded(
    transcriber: WhisperxTranscriber, chat_model: TransformersChatModel, synthesizer: PiperSynthesizer
) -> Parts:
    """The bundled models loaded once for the session, given to the runs a test builds (the small ones:
    the VAD, the turn-end model and the voice encoder, are still loaded by each run)."""
    return Parts(transcriber=transcriber, chat_model=chat_model, synthesizer=synthesizer)
