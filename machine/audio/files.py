"""Reading recorded audio into the runtime's format, and writing the bot's replies.

Any sample rate, channel count or sample type is converted to 16 kHz mono float32; audio that cannot be
used (empty, NaN/Inf, not audio at all) is refused with an error naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr

from machine.ports import SAMPLE_RATE, AudioInputError, FloatAudio


def to_mono_16k(samples: np.ndarray, sample_rate: int, source: str = "audio") -> FloatAudio:
    """Convert audio of any rate, layout (frames x channels) and sample type to 16 kHz mono float32."""
    if sample_rate <= 0:
        raise AudioInputError(f"{source}: sample rate {sample_rate} Hz is not a valid rate")
    data = np.asarray(samples)
    if data.size == 0:
        raise AudioInputError(
            f"{source}: the audio is empty (no samples); give a recording with speech in it"
        )
    if np.issubdtype(data.dtype, np.integer):
        scale = float(np.iinfo(data.dtype).max) + 1.0
        data = data.astype(np.float32) / scale
    else:
        data = data.astype(np.float32, copy=False)
    if not np.all(np.isfinite(data)):
        raise AudioInputError(
            f"{source}: the audio holds NaN or infinite samples; re-export it as 16-bit PCM or clean float"
        )
    if data.ndim == 2:
        data = data.mean(axis=1, dtype=np.float32)
    elif data.ndim != 1:
        raise AudioInputError(f"{source}: expected frames x channels audio, got {data.ndim} dimensions")
    if sample_rate != SAMPLE_RATE:
        data = soxr.resample(data, sample_rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak > 1.0:
        data = data / peak
    return np.ascontiguousarray(data, dtype=np.float32)


def read_wav(path: Path) -> FloatAudio:
    """Read a WAV (or any format libsndfile knows) as 16 kHz mono float32."""
    try:
        info = soundfile.info(str(path))
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioInputError(f"{path}: not a readable audio file ({exc}); give a WAV file") from None
    if info.frames == 0:
        raise AudioInputError(f"{path}: the audio is empty (no samples); give a recording with speech in it")
    return to_mono_16k(data, int(rate), source=str(path))


def wav_inputs(path: Path) -> list[Path]:
    """The WAV files named by `path`: the file itself, or the sorted WAVs of a folder."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
        if not files:
            raise AudioInputError(f"{path}: the folder holds no .wav files")
        return files
    if not path.exists():
        raise AudioInputError(f"{path}: no such file or folder")
    return [path]


def write_wav(path: Path, samples: FloatAudio, sample_rate: int) -> None:
    """Write float audio as 16-bit PCM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16")
