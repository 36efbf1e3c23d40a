"""The loading paths the README's model choices use, exercised with the bundled files named the way a
player names a bigger model: a whisper model folder, a transformers model folder (a hub id loads through
the same `from_pretrained` call), and a Piper voice file."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from speech import words

from machine.app import build_chat_model, build_synthesizer
from machine.backends import bundled_models
from machine.backends.dequantised_cache import dequantised_folder
from machine.backends.transformers_chat import TransformersChatModel
from machine.backends.whisperx_transcriber import WhisperxTranscriber
from machine.ports import ChatMessage
from machine.settings import MachineSettings

pytestmark = pytest.mark.models


def test_a_whisper_model_named_by_its_folder_transcribes(
    settings: MachineSettings, speak_16k: Callable[[str], np.ndarray]
) -> None:
    named = settings.transcriber.model_copy(update={"model": str(bundled_models.whisper_tiny_en())})
    transcriber = WhisperxTranscriber(named, settings.bot_name)
    assert "hear" in words(transcriber.transcribe(speak_16k("Celeste, can you hear me?")).text)


def test_a_chat_model_named_by_its_folder_replies(
    settings: MachineSettings, chat_model: TransformersChatModel
) -> None:
    """The folder is the dequantised bundled model the session's `chat_model` left in the cache: a
    transformers model folder, as a downloaded hub model is."""
    folder, gguf = bundled_models.smollm2_gguf()
    cached = dequantised_folder(Path(folder) / gguf, settings.chat_model.cache_dir)
    assert cached is not None and cached.is_dir(), "the session's chat model caches its weights"
    named = settings.chat_model.model_copy(update={"model": str(cached), "gguf_file": None})
    model = build_chat_model(named)
    messages = [ChatMessage("system", settings.persona()), ChatMessage("user", "What is your name?")]
    reply = "".join(model.stream(messages, threading.Event(), named.sampling()))
    assert len(words(reply)) >= 2, reply


def test_a_piper_voice_named_by_its_file_speaks(settings: MachineSettings) -> None:
    named = settings.synthesizer.model_copy(update={"voice": str(bundled_models.joe_voice())})
    voice = build_synthesizer(named)
    audio = np.concatenate([chunk.samples for chunk in voice.synthesize("Hello there.")])
    assert voice.sample_rate == 22_050 and len(audio) > voice.sample_rate // 4
