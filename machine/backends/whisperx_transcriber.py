"""Speech to text with whisperx on already endpointed audio.

The runtime's endpointer has already cut the utterance, so whisperx's own VAD is replaced by one that
hands the whole utterance on as a single segment; with `decoder: batched`, one longer than whisper's 30 s
window is split at its quietest moments (pauses), never mid-word, and whisperx joins the pieces into one
transcript (the sequential decoder takes only audio within one window). Audio goes in as
numpy (whisperx's file loader would need ffmpeg). The bot's name is passed as a hotword and in the
initial prompt so whisper spells it right.

Against words invented at a segment's edges (issue #25, docs/hearing.md): by default the audio is cut to
what silero-vad hears as voice plus a pad, and a word looped more often than the voice could hold is
written once (transcript_edges.py); `decoder: sequential` decodes with faster-whisper's own decoder on the
same model instead (greedy, with whisper's no-speech check).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from machine.backends import bundled_models
from machine.backends.silero_vad import SileroVoiceActivity
from machine.backends.transcript_edges import collapse_repeats, voice_span
from machine.ports import SAMPLE_RATE, FloatAudio, Transcript
from machine.settings import BUNDLED, TranscriberSettings

# whisperx imports pyannote.audio, which tries to load torchcodec's FFmpeg decoders and, when the system
# has no matching FFmpeg, warns in 22 lines at every start. Audio reaches whisperx as numpy here, so no
# decoder is ever needed: that one warning is silenced (only it, only from pyannote's loader).
warnings.filterwarnings(
    "ignore",
    message=r"\s*torchcodec is not installed correctly",
    category=UserWarning,
    module=r"pyannote\.audio\.core\.io",
)

import whisperx  # noqa: E402  # after the filter above
from whisperx.vads.vad import Vad  # noqa: E402

log = logging.getLogger(__name__)

_WINDOW_S = 30.0
_SEARCH_S = 8.0
"""A piece ends at the quietest 100 ms in the last `_SEARCH_S` seconds of a window."""
_PAUSE_S = 0.1
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
        rate = audio["sample_rate"]
        return [_Segment(start / rate, end / rate) for start, end in pieces(audio["waveform"], rate)]


def pieces(samples: np.ndarray, rate: int) -> list[tuple[int, int]]:
    """(start, end) sample ranges of at most 30 s covering `samples`, cut at the quietest moments."""
    window, search, pause = int(_WINDOW_S * rate), int(_SEARCH_S * rate), int(_PAUSE_S * rate)
    ranges: list[tuple[int, int]] = []
    start = 0
    while len(samples) - start > window:
        region = np.square(samples[start + window - search : start + window], dtype=np.float64)
        summed = np.concatenate([[0.0], np.cumsum(region)])
        energy = summed[pause:] - summed[:-pause]  # the energy of every 100 ms stretch
        cut = start + window - search + int(np.argmin(energy)) + pause // 2
        ranges.append((start, cut))
        start = cut
    ranges.append((start, len(samples)))
    return ranges


class WhisperxTranscriber:
    """whisper (faster-whisper, loaded through whisperx) on one utterance at a time."""

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
        self._settings = settings
        self._vad = SileroVoiceActivity() if settings.trim_to_voice else None

    def transcribe(self, samples: FloatAudio) -> Transcript:
        """Transcribe 16 kHz mono float32 audio of any length."""
        if samples.size < SAMPLE_RATE // 10:
            return Transcript(text="", language=self._language)
        samples = np.asarray(samples, dtype=np.float32)
        voiced_s = samples.size / SAMPLE_RATE
        if self._vad is not None:
            self._vad.reset()
            pad = int(self._settings.trim_pad_ms * SAMPLE_RATE / 1000)
            span = voice_span(samples, self._vad.probability, pad)
            samples, voiced_s = samples[span.start : span.end], span.voiced_s
        # Whisper tends to drop a word that starts at the very first sample: lead in with a little silence.
        padded = np.concatenate([self._lead_in, samples])
        # Past one 30 s window the sequential decoder seeks by its own timestamps, and on a 47 s call it
        # looped a sentence ten times: longer audio goes to the batched one, cut at pauses (`pieces`).
        if self._settings.decoder == "sequential" and padded.size <= _WINDOW_S * SAMPLE_RATE:
            text = self._sequential(padded)
        else:
            result = self._pipeline.transcribe(padded, batch_size=1)
            text = " ".join(segment["text"].strip() for segment in result["segments"]).strip()
        if self._settings.collapse_repeats:
            text = collapse_repeats(text, voiced_s)
        return Transcript(text=text, language=self._language)

    def _sequential(self, audio: FloatAudio) -> str:
        """faster-whisper's own decoder on the same model: it writes timestamps and, where a segment ends
        before the audio does, decodes the rest again from there (whisperx's batched one decodes the window
        once, without timestamps), and it is the one that applies whisper's guards (whisperx's accepts
        them and ignores them). Greedy only: the temperature fallback changed nothing on the edge set and
        samples at random when it fires, so the same audio could be heard two ways; the no-speech check
        (no-speech probability over 0.6 with a mean log-probability under -1) stays at whisper's values."""
        options = self._pipeline.options
        segments, _ = self._pipeline.model.transcribe(
            audio,
            language=self._language,
            beam_size=options.beam_size,
            initial_prompt=options.initial_prompt,
            hotwords=options.hotwords,
            suppress_blank=options.suppress_blank,
            temperature=0.0,
            condition_on_previous_text=False,  # a loop in one window is not fed into the next
            vad_filter=False,  # the endpointer (and `trim_to_voice`) already found the speech
        )
        return " ".join(segment.text.strip() for segment in segments).strip()
