"""Recorded audio in: any rate, channels or sample type becomes 16 kHz mono float32; bad input is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from machine.audio.files import read_wav, to_mono_16k, wav_inputs
from machine.ports import AudioInputError


def tone(rate: int, seconds: float = 0.5, frequency: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def dominant_frequency(samples: np.ndarray, rate: int = 16_000) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def test_8khz_stereo_int16_becomes_16khz_mono_float(tmp_path: Path) -> None:
    left = (tone(8000) * 32767).astype(np.int16)
    path = tmp_path / "phone.wav"
    soundfile.write(str(path), np.stack([left, left], axis=1), 8000, subtype="PCM_16")
    audio = read_wav(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 8000) <= 2
    assert abs(dominant_frequency(audio) - 440) < 5
    assert 0.45 < np.max(np.abs(audio)) < 0.55


def test_48khz_float_is_resampled(tmp_path: Path) -> None:
    path = tmp_path / "studio.wav"
    soundfile.write(str(path), tone(48_000, frequency=1000), 48_000, subtype="FLOAT")
    audio = read_wav(path)
    assert abs(len(audio) - 8000) <= 2
    assert abs(dominant_frequency(audio) - 1000) < 5


def test_int32_and_loud_float_are_scaled_into_range() -> None:
    as_int32 = (tone(16_000) * 2**31 * 0.99).astype(np.int32)
    assert np.max(np.abs(to_mono_16k(as_int32, 16_000))) <= 1.0
    assert np.max(np.abs(to_mono_16k(tone(16_000) * 8, 16_000))) == pytest.approx(1.0)


def test_empty_audio_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    soundfile.write(str(path), np.zeros(0, dtype=np.float32), 16_000)
    with pytest.raises(AudioInputError, match=r"empty\.wav: the audio is empty"):
        read_wav(path)


def test_nan_audio_is_refused_naming_the_file(tmp_path: Path) -> None:
    samples = tone(16_000)
    samples[100] = np.nan
    path = tmp_path / "nan.wav"
    soundfile.write(str(path), samples, 16_000, subtype="FLOAT")
    with pytest.raises(AudioInputError, match=r"nan\.wav: the audio holds NaN or infinite samples"):
        read_wav(path)
    with pytest.raises(AudioInputError, match="infinite"):
        to_mono_16k(np.array([0.0, np.inf], dtype=np.float32), 16_000)


def test_non_audio_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio", encoding="utf-8")
    with pytest.raises(AudioInputError, match=r"notes\.wav: not a readable audio file"):
        read_wav(path)


def test_inputs_from_a_file_or_a_folder(tmp_path: Path) -> None:
    for name in ("b.wav", "a.wav", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in wav_inputs(tmp_path)] == ["a.wav", "b.wav"]
    assert wav_inputs(tmp_path / "a.wav") == [tmp_path / "a.wav"]
    with pytest.raises(AudioInputError, match="no such file"):
        wav_inputs(tmp_path / "missing.wav")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AudioInputError, match=r"holds no \.wav files"):
        wav_inputs(empty)
