"""Each backend on its bundled model: VAD, transcription, reply and speech, checked against each other."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest
from speech import word_error_rate, words

from machine.backends.piper_synthesizer import PiperSynthesizer
from machine.backends.silero_vad import SileroVoiceActivity
from machine.backends.transformers_chat import TransformersChatModel
from machine.backends.whisperx_transcriber import WhisperxTranscriber
from machine.listen.endpointing import Ended, Endpointer
from machine.ports import CHUNK_SAMPLES, SAMPLE_RATE, AudioChunk, ChatMessage
from machine.settings import EndpointingSettings, MachineSettings

pytestmark = pytest.mark.models

Speak = Callable[[str], np.ndarray]


def chunks(audio: np.ndarray) -> list[np.ndarray]:
    padded = np.concatenate([audio, np.zeros(-len(audio) % CHUNK_SAMPLES, dtype=np.float32)])
    return list(padded.reshape(-1, CHUNK_SAMPLES))


def test_silero_hears_speech_and_not_silence_or_noise(speak_16k: Speak) -> None:
    vad = SileroVoiceActivity()
    speech = [vad.probability(c) for c in chunks(speak_16k("The quick brown fox jumps over the lazy dog."))]
    vad.reset()
    rng = np.random.default_rng(0)
    noise = [
        vad.probability((0.01 * rng.standard_normal(CHUNK_SAMPLES)).astype(np.float32)) for _ in range(60)
    ]
    assert np.mean(np.array(speech) > 0.5) > 0.5
    assert max(noise) < 0.5


def test_endpointer_on_real_speech_closes_one_utterance(speak_16k: Speak) -> None:
    audio = speak_16k("Hello Celeste, are you there?")
    signal = (
        [np.zeros(CHUNK_SAMPLES, dtype=np.float32)] * 20
        + chunks(audio)
        + [np.zeros(CHUNK_SAMPLES, dtype=np.float32)] * 40
    )
    endpointer = Endpointer(SileroVoiceActivity(), EndpointingSettings())
    events = [endpointer.push(AudioChunk(c, i * 0.032)) for i, c in enumerate(signal)]
    closed = [event.utterance for event in events if isinstance(event, Ended)]
    assert len(closed) == 1
    assert abs(closed[0].duration_s - len(audio) / SAMPLE_RATE) < 1.0


@pytest.mark.parametrize(
    "sentence",
    [
        "Hello Celeste, what is your favorite game in virtual reality?",
        "The weather is lovely today, so let us go for a walk in the park.",
    ],
)
def test_transcriber_word_error_rate(
    transcriber: WhisperxTranscriber, speak_16k: Speak, sentence: str
) -> None:
    transcript = transcriber.transcribe(speak_16k(sentence))
    assert word_error_rate(sentence, transcript.text) <= 0.2, transcript.text


def test_transcriber_spells_the_bot_name_and_ignores_silence(
    transcriber: WhisperxTranscriber, speak_16k: Speak
) -> None:
    assert "celeste" in words(transcriber.transcribe(speak_16k("Celeste, can you hear me?")).text)
    assert not transcriber.transcribe(np.zeros(SAMPLE_RATE // 20, dtype=np.float32)).has_words


def test_chat_model_replies_in_text(chat_model: TransformersChatModel, settings: MachineSettings) -> None:
    messages = [ChatMessage("system", settings.persona()), ChatMessage("user", "What is your name?")]
    reply = "".join(chat_model.stream(messages, threading.Event(), settings.chat_model.sampling()))
    assert len(words(reply)) >= 2, reply


def test_chat_model_stops_when_cancelled(
    chat_model: TransformersChatModel, settings: MachineSettings
) -> None:
    cancel = threading.Event()
    pieces = []
    messages = [ChatMessage("user", "Tell me a long story about dragons.")]
    for piece in chat_model.stream(messages, cancel, settings.chat_model.sampling()):
        pieces.append(piece)
        cancel.set()
    assert 1 <= len(pieces) <= 3


def test_piper_speaks_what_it_is_given(
    synthesizer: PiperSynthesizer, transcriber: WhisperxTranscriber, speak_16k: Speak
) -> None:
    sentence = "I like talking with new friends every evening."
    assert synthesizer.sample_rate == 22_050
    transcript = transcriber.transcribe(speak_16k(sentence))
    assert word_error_rate(sentence, transcript.text) <= 0.2, transcript.text


def test_piper_speed_setting_changes_duration(settings: MachineSettings) -> None:
    def duration(length_scale: float) -> float:
        voice = PiperSynthesizer(settings.synthesizer.model_copy(update={"length_scale": length_scale}))
        return (
            sum(len(c.samples) for c in voice.synthesize("One two three four five six.")) / voice.sample_rate
        )

    assert duration(1.5) > 1.3 * duration(1.0)


def test_missing_voice_file_is_reported(settings: MachineSettings) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"machine\.synthesizer\.voice: .*nowhere\.onnx is not a file"
    ):
        PiperSynthesizer(settings.synthesizer.model_copy(update={"voice": "/nowhere.onnx"}))


def test_transcriber_hears_two_hellos_without_looping_them(transcriber: WhisperxTranscriber) -> None:
    """Real human speech: the opening of the phone call pyannote.audio ships as its sample (its
    sample.stm: "Hello?" "Hello?" "Oh, hello." "I didn't know you were there."), cut as the endpointer
    would, with its pre-roll. Before the edge guards tiny.en wrote "Hello." seven times here; the sequential
    decoder and the trim + collapse each stop it alone."""
    import importlib.resources
    from pathlib import Path

    from machine.audio.files import read_wav

    call = read_wav(Path(str(importlib.resources.files("pyannote.audio") / "sample" / "sample.wav")))
    opening = call[int(6.36 * SAMPLE_RATE) : int(9.83 * SAMPLE_RATE)]  # until the other one answers
    heard = words(transcriber.transcribe(opening).text)
    assert heard.count("hello") <= 3, heard
    assert heard[-5:] == ["didn't", "know", "you", "were", "there"], heard
