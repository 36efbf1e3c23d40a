"""Speech to text with whisperx on already endpointed audio.

The runtime's endpointer has already cut the utterance, so whisperx's own VAD is replaced by one that
hands the whole utterance on as a single segment (split at 30 s, whisper's window). Audio goes in as
numpy (whisperx's file loader would need ffmpeg). The bot's name is passed as a hotword and in the
initial prompt so whisper spells it right.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import whisperx
from whisperx.vads.vad import Vad

from machine import bundled_models
from machine.ports import SAMPLE_RATE, FloatAudio, Transcript
from machine.settings import BUNDLED, TranscriberSettings

log = logging.getLogger(__name__)

_WINDOW_S = 30.0
_LEAD_IN_S = 0.25


@dataclass(frozen=True)
class _Segment:
    start: float
    end: float
    speaker: str | None = None


class WholeUtterance(Vad):
    """A whisperx VAD that treats the whole (already endpointed) audio as speech."""

    def __init__(self) -> None:
        super().__init__(vad_onset=0.5)

    @staticmethod
    def preprocess_audio(audio: np.ndarray) -> np.ndarray:
        return audio

    def __call__(self, audio: dict[str, Any], **kwargs: Any) -> list[_Segment]:
        duration = len(audio["waveform"]) / audio["sample_rate"]
        starts = np.arange(0.0, duration, _WINDOW_S)
        return [_Segment(float(start), float(min(start + _WINDOW_S, duration))) for start in starts]


class WhisperxTranscriber:
    """whisperx's batched faster-whisper pipeline on one utterance at a time."""

    def __init__(self, settings: TranscriberSettings, bot_name: str) -> None:
        model = str(bundled_models.whisper_tiny_en()) if settings.model == BUNDLED else settings.model
        log.info("loading transcriber %s", model)
        with contextlib.redirect_stdout(io.StringIO()):  # whisperx prints a notice about the custom VAD
            self._pipeline = whisperx.load_model(
                model,
                device=settings.device,
                compute_type=settings.compute_type,
                language=settings.language,
                vad_model=WholeUtterance(),
                asr_options={
                    "beam_size": settings.beam_size,
                    "hotwords": bot_name,
                    "initial_prompt": f"A voice chat with {bot_name}.",
                    "suppress_blank": True,
                },
                local_files_only=settings.model == BUNDLED,
                threads=settings.cpu_threads,
            )
        self._language = settings.language
        self._lead_in = np.zeros(int(_LEAD_IN_S * SAMPLE_RATE), dtype=np.float32)

    def transcribe(self, samples: FloatAudio) -> Transcript:
        """Transcribe 16 kHz mono float32 audio of any length."""
        if samples.size < SAMPLE_RATE // 10:
            return Transcript(text="", language=self._language)
        # Whisper tends to drop a word that starts at the very first sample: lead in with a little silence.
        padded = np.concatenate([self._lead_in, np.asarray(samples, dtype=np.float32)])
        result = self._pipeline.transcribe(padded, batch_size=1)
        text = " ".join(segment["text"].strip() for segment in result["segments"]).strip()
        return Transcript(text=text, language=result.get("language") or self._language)
