"""The composition root: builds the runtime's parts from the settings, reading top to bottom.

source → endpointer (silero-vad) → transcriber (whisperx) → thinker (InfiniMemory + chat model) → speaker
(Piper, synthesising ahead) → sink. Vendor libraries are imported here only through the backend modules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from machine.barge_in import BargeInDetector
from machine.conversation_memory import BlockMemory
from machine.endpointing import Endpointer
from machine.llm.transformers_chat import TransformersChatModel
from machine.ports import AudioSink, FloatAudio
from machine.runtime import Runtime
from machine.settings import MachineSettings
from machine.speaking import Speaker
from machine.stt.whisperx_transcriber import WhisperxTranscriber
from machine.thinking import Thinker
from machine.tts.piper_synthesizer import PiperSynthesizer
from machine.turn_metrics import TurnRecord
from machine.vad.silero import SileroVoiceActivity

log = logging.getLogger(__name__)


def build_runtime(
    settings: MachineSettings,
    memory: BlockMemory,
    sink: AudioSink,
    on_turn: Callable[[TurnRecord], None],
    echo_reference: Callable[[], float] | None = None,
) -> Runtime:
    """Load every model named in the settings and connect them into a runtime that plays into `sink`.

    `echo_reference` (the level being played now) enables barge-in when `machine.audio.barge_in` is on."""
    persona = settings.persona()
    endpointer = Endpointer(SileroVoiceActivity(), settings.endpointing)
    transcriber = WhisperxTranscriber(settings.transcriber, settings.bot_name)
    thinker = Thinker(
        TransformersChatModel(settings.chat_model),
        memory,
        persona,
        settings.bot_name,
        max_sentences=settings.chat_model.max_sentences,
        first_clause_words=settings.chat_model.first_clause_words,
    )
    speaker = Speaker(PiperSynthesizer(settings.synthesizer), sink)
    return Runtime(
        endpointer,
        transcriber,
        thinker,
        speaker,
        on_turn,
        chunk_queue_size=settings.audio.capture_queue_blocks,
        denoiser=_denoiser(settings.audio.denoiser),
        echo_tail_s=settings.audio.echo_tail_ms / 1000,
        on_activity=memory.touch,
        **_barge_in(settings, echo_reference),
    )


def _barge_in(settings: MachineSettings, echo_reference: Callable[[], float] | None) -> dict[str, Any]:
    if not (settings.audio.barge_in and echo_reference is not None):
        return {}
    detector = BargeInDetector(
        SileroVoiceActivity(),
        settings.endpointing.vad_threshold,
        hold_ms=settings.audio.barge_in_ms,
        margin_db=settings.audio.barge_in_margin_db,
    )
    return {"barge_in": detector, "echo_reference": echo_reference}


def _denoiser(name: str) -> Callable[[FloatAudio], FloatAudio] | None:
    if name == "rnnoise":
        from machine.denoise.rnnoise import RnnoiseDenoiser

        return RnnoiseDenoiser()
    return None
