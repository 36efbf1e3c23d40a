"""Live-audio building blocks on synthetic signals: resampling device blocks into chunks, denoising."""

from __future__ import annotations

import numpy as np
import pytest

from machine.audio.capture import BlockConverter
from machine.ports import CHUNK_SAMPLES, SAMPLE_RATE
from machine.shared.levels import dbfs


def sine(rate: int, seconds: float, frequency: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def dominant_frequency(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[int(np.argmax(spectrum))])


@pytest.mark.parametrize("rate", [16_000, 44_100, 48_000])
def test_device_blocks_become_16khz_chunks(rate: int) -> None:
    converter = BlockConverter(rate)
    signal = sine(rate, 2.0, 700.0)
    chunks: list[np.ndarray] = []
    sizes = [441, 1000, 37, 2048]  # devices deliver blocks of any size
    start = 0
    while start < len(signal):
        size = sizes[len(chunks) % len(sizes)]
        chunks += converter.push(signal[start : start + size])
        start += size
    assert all(c.shape == (CHUNK_SAMPLES,) and c.dtype == np.float32 for c in chunks)
    joined = np.concatenate(chunks)
    assert abs(len(joined) - 2 * SAMPLE_RATE) <= 2 * CHUNK_SAMPLES
    assert abs(dominant_frequency(joined[2000:-2000]) - 700) < 5
    assert dbfs(joined[2000:-2000]) == pytest.approx(dbfs(signal), abs=0.5)


def test_rnnoise_quietens_noise_and_keeps_chunk_size() -> None:
    from machine.backends.rnnoise_denoiser import RnnoiseDenoiser

    rng = np.random.default_rng(1)
    noise = (0.05 * rng.standard_normal(3 * SAMPLE_RATE)).astype(np.float32)
    denoiser = RnnoiseDenoiser()
    out = np.concatenate(
        [denoiser(noise[i : i + CHUNK_SAMPLES]) for i in range(0, len(noise), CHUNK_SAMPLES)]
    )
    assert len(out) == len(noise)
    assert dbfs(out[SAMPLE_RATE:]) < dbfs(noise) - 10, "steady noise is suppressed by more than 10 dB"
