"""Whisper's log-mel features in numpy: the shape, padding and scale of what the turn-end model is given,
and (with transformers loaded) the same numbers as transformers' `WhisperFeatureExtractor`, and the same
turn-end probabilities with either."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from machine.audio.files import to_mono_16k
from machine.backends import smart_turn as smart_turn_module
from machine.backends import whisper_features
from machine.backends.whisper_features import log_mel
from machine.ports import SAMPLE_RATE
from machine.settings import MachineSettings

EIGHT_S = 8 * SAMPLE_RATE
rng = np.random.default_rng(7)


def speech_like(seconds: float) -> np.ndarray:
    """Noise shaped like speech: a low-passed buzz with syllable-rate loudness changes."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    noise = np.convolve(rng.standard_normal(n), np.ones(8) / 8, "same")
    voiced = 0.3 * np.sin(2 * np.pi * 130 * t) * (1 + np.sin(2 * np.pi * 260 * t))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return ((voiced + 0.2 * noise) * envelope).astype(np.float32)


def tone(hertz: float, seconds: float, level: float = 0.3) -> np.ndarray:
    return (level * np.sin(2 * np.pi * hertz * np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE)).astype(
        np.float32
    )


def test_one_frame_per_ten_milliseconds_of_80_mel_bins_in_float32() -> None:
    features = log_mel(speech_like(8))
    assert features.shape == (80, 800) and features.dtype == np.float32
    assert log_mel(speech_like(1.005)).shape == (80, 100)  # len // 160: the last STFT frame is dropped
    assert log_mel(np.zeros(EIGHT_S, dtype=np.float64)).dtype == np.float32


def test_the_scale_is_whispers_log10_clamped_to_eight_decades_below_the_peak() -> None:
    loud_then_quiet = np.concatenate(
        [tone(440, 4), (1e-7 * rng.standard_normal(4 * SAMPLE_RATE)).astype(np.float32)]
    )
    features = log_mel(loud_then_quiet)
    assert np.all(np.isfinite(features))
    assert features.min() == pytest.approx(features.max() - 2.0, abs=1e-6)  # 8 decades / 4
    assert -1.5 < features.max() < 3.0


def test_silence_is_the_floor_not_nan() -> None:
    """The warm-up runs the model on a second of silence: normalising it must not divide by zero."""
    assert np.all(log_mel(np.zeros(EIGHT_S, dtype=np.float32)) == np.float32(-1.5))  # (log10(1e-10) + 4) / 4


def test_a_tone_lands_in_the_mel_bin_of_its_frequency() -> None:
    features = log_mel(tone(1000, 2))
    fft_bin = 1000 * 400 // SAMPLE_RATE
    assert int(np.argmax(features.mean(axis=1))) == int(np.argmax(whisper_features._MEL_FILTERS[fft_bin]))


def test_normalising_removes_loudness_and_offset() -> None:
    audio = speech_like(2)
    np.testing.assert_allclose(log_mel(audio), log_mel(4 * audio + 0.1), atol=1e-4)
    assert not np.allclose(log_mel(audio, normalize=False), log_mel(4 * audio, normalize=False), atol=0.1)


def test_a_clip_padded_at_the_front_is_in_the_last_frames() -> None:
    clip = speech_like(1)
    features = log_mel(np.pad(clip, (EIGHT_S - len(clip), 0)))
    np.testing.assert_array_equal(features[:, :698], np.repeat(features[:, :1], 698, axis=1))  # the padding
    assert features[:, 702:].mean() > features[:, :698].mean() + 0.5


def test_too_short_or_stereo_audio_is_refused() -> None:
    with pytest.raises(ValueError, match="mono audio of over 200 samples"):
        log_mel(np.zeros(200, dtype=np.float32))
    with pytest.raises(ValueError, match="mono audio"):
        log_mel(np.zeros((2, SAMPLE_RATE), dtype=np.float32))


# transformers' WhisperFeatureExtractor, as the turn-end model was fed before (its torch STFT in float32,
# since torch is installed): the numpy features must equal it, and the model's verdicts must not move


def _transformers_features() -> Callable[..., np.ndarray]:
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(chunk_length=8, sampling_rate=SAMPLE_RATE)

    def features(audio: np.ndarray, normalize: bool = True) -> np.ndarray:
        return np.asarray(
            extractor(
                audio,
                sampling_rate=SAMPLE_RATE,
                return_tensors="np",
                padding="max_length",
                max_length=EIGHT_S,
                truncation=True,
                do_normalize=normalize,
            ).input_features[0],
            dtype=np.float32,
        )

    return features


@pytest.mark.models
def test_the_features_equal_transformers_whisper_feature_extractor() -> None:
    """Measured: at most 2e-5 apart (float32 rounding in torch's STFT)."""
    reference = _transformers_features()
    short = speech_like(1.3)
    signals = {
        "speech-like noise": speech_like(8),
        "a tone": tone(440, 8),
        "silence": np.zeros(EIGHT_S, dtype=np.float32),
        "a short clip padded at the front": np.pad(short, (EIGHT_S - len(short), 0)),
        "quiet white noise": (1e-3 * rng.standard_normal(EIGHT_S)).astype(np.float32),
    }
    for name, audio in signals.items():
        ours, theirs = log_mel(audio), reference(audio)
        assert ours.shape == theirs.shape == (80, 800), name
        assert np.abs(ours - theirs).max() < 1e-4, name
    audio = speech_like(8)
    assert np.abs(log_mel(audio, normalize=False) - reference(audio, False)).max() < 1e-4


@pytest.fixture(scope="module")
def speak_steadily(settings: MachineSettings) -> Callable[[str], np.ndarray]:
    """The bundled Piper voice without its random variation: the same text is always the same audio."""
    from machine.backends.piper_synthesizer import PiperSynthesizer

    voice = PiperSynthesizer(
        settings.synthesizer.model_copy(update={"noise_scale": 0.0, "noise_w_scale": 0.0})
    )

    def speak(text: str) -> np.ndarray:
        return to_mono_16k(
            np.concatenate([chunk.samples for chunk in voice.synthesize(text)]), voice.sample_rate
        )

    return speak


@pytest.mark.models
def test_the_turn_end_probabilities_are_unchanged(
    speak_steadily: Callable[[str], np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The int8 model turns some feature differences of 1e-5 into different probabilities: features
    jittered by 1e-5 noise moved "Would you rather fly like a bird or swim like a fish?" between 0.13 and
    0.78, and one 13 s clip ending "I was going to say that the" scored 0.060 with these features (as
    with transformers' own numpy path) and 0.107 with its torch path. Compared here: clips the jitter
    hardly moves (by 1e-3 at most). Measured with both front ends: 0.9893, 0.0075, and 0.0059 / 0.0057."""
    model = smart_turn_module.SmartTurn()
    pause = np.zeros(SAMPLE_RATE // 5, dtype=np.float32)
    before = [
        "I think we should go to the beach world after this.",
        "My cat is called Pickles and",
        "Would you rather fly like a bird or swim like a fish?",
        "Tomorrow I have to",
        "The avatar I am wearing is a fox with blue eyes.",
    ]
    clips = [
        np.concatenate([speak_steadily("What is your favourite colour?"), pause]),
        np.concatenate([speak_steadily("Well, um"), pause]),
        np.concatenate([*map(speak_steadily, before), speak_steadily("Well, um"), pause]),  # 12 s
    ]
    assert len(clips[-1]) > EIGHT_S
    ours = [model.probability(clip) for clip in clips]
    monkeypatch.setattr(smart_turn_module, "log_mel", _transformers_features())
    theirs = [model.probability(clip) for clip in clips]
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
