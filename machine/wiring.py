"""The composition root: builds the runtime's parts from the settings, reading top to bottom.

source → endpointer (silero-vad) → transcriber (whisperx) → thinker (InfiniMemory + chat model) → speaker
(Piper or Coqui, synthesising ahead) → sink. Vendor libraries are imported here only through the backend
modules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from machine import bundled_models
from machine.listen.crowd import Crowd
from machine.listen.echo_gate import EchoGate, PlaybackLevels
from machine.listen.endpointing import Endpointer, TurnEnd
from machine.listen.hearing import Hearing
from machine.listen.silero_vad import SileroVoiceActivity
from machine.listen.speakers import SpeakerTracker
from machine.listen.whisperx_transcriber import WhisperxTranscriber
from machine.ports import (
    AudioSink,
    Captions,
    ChatModel,
    ConversationMemory,
    FloatAudio,
    Synthesizer,
    TextEmbedder,
)
from machine.reply.checks import ReplyChecker
from machine.reply.memory_answer import MemoryAnswer
from machine.reply.policy import ReplyPolicy
from machine.reply.profanity_classifier import profanity_probability
from machine.reply.thinking import Thinker
from machine.runtime import Runtime
from machine.settings import ChatModelSettings, EndpointingSettings, MachineSettings, SynthesizerSettings
from machine.speak.captions import ChatboxCaptions
from machine.speak.piper_synthesizer import PiperSynthesizer
from machine.speak.speaker import Speaker
from machine.turn_metrics import TurnRecord

log = logging.getLogger(__name__)


def build_runtime(
    settings: MachineSettings,
    memory: ConversationMemory,
    sink: AudioSink,
    on_turn: Callable[[TurnRecord], None],
    playback_levels: PlaybackLevels | None = None,
    embedder: TextEmbedder | None = None,
) -> Runtime:
    """Load every model named in the settings and connect them into a runtime that plays into `sink`.

    `playback_levels` (what the sink plays, for live audio) turns on the echo gate, and with it barge-in
    when `machine.audio.barge_in` is on. `embedder` (the memory's) lets the bot answer questions about
    the user from what they told it (`machine.chat_model.memory_answers`)."""
    persona = settings.persona()
    captions = build_captions(settings)  # first: a wrong host fails before the models load
    hearing = build_hearing(settings, playback_levels)
    transcriber = WhisperxTranscriber(settings.transcriber, settings.bot_name)
    thinker = Thinker(
        build_chat_model(settings.chat_model),
        memory,
        persona,
        settings.bot_name,
        settings.chat_model,
        settings.reply_checks,
        build_reply_checker(settings, persona),
        build_memory_answer(settings, embedder),
    )
    speaker = Speaker(build_synthesizer(settings.synthesizer), sink)
    crowd = build_crowd(settings)
    return Runtime(
        hearing,
        transcriber,
        thinker,
        speaker,
        on_turn,
        chunk_queue_size=settings.audio.capture_queue_blocks,
        on_activity=memory.touch,
        captions=captions,
        warm_up=True,
        crowd=crowd,
    )


def build_memory_answer(settings: MachineSettings, embedder: TextEmbedder | None) -> MemoryAnswer | None:
    """The answer from memory to questions about the user, when an embedder is at hand (the Thinker
    heeds `machine.chat_model.memory_answers`)."""
    chat = settings.chat_model
    if embedder is None:
        return None
    return MemoryAnswer(
        embedder, chat.memory_answer_about_user, chat.memory_answer_about_other, settings.bot_name
    )


def build_crowd(settings: MachineSettings) -> Crowd:
    """Speaker identification (the bundled GE2E voice encoder, unless `machine.speakers.enabled` is off)
    and the reply policy."""
    encoder = None
    if settings.speakers.enabled:
        from machine.listen.voice_encoder import VoiceEncoder  # torch and librosa: only when used

        encoder = VoiceEncoder(bundled_models.voice_encoder_weights())
    return Crowd(
        encoder,
        SpeakerTracker(settings.speakers.threshold, settings.bot_name),
        ReplyPolicy(settings.reply_policy, settings.bot_name),
        settings.speakers.forget_after_idle_s,
    )


def build_hearing(settings: MachineSettings, playback_levels: PlaybackLevels | None) -> Hearing:
    """The bot's ears: silero-vad endpointing, the optional denoiser, and, on live audio, the echo gate
    and barge-in."""
    audio = settings.audio
    gate = (
        EchoGate(playback_levels, audio.echo_margin_db, audio.echo_max_delay_ms)
        if playback_levels is not None
        else None
    )
    endpointing = settings.endpointing
    return Hearing(
        Endpointer(SileroVoiceActivity(), endpointing, _turn_end(endpointing)),
        gate,
        barge_in_ms=audio.barge_in_ms if audio.barge_in and gate is not None else None,
        max_held_s=2 * endpointing.max_utterance_s,
        denoiser=_denoiser(audio.denoiser),
        speculate=endpointing.speculate,
    )


def _turn_end(settings: EndpointingSettings) -> TurnEnd | None:
    """The turn-end model `turn_model` names (None: the turn ends after a silence)."""
    if settings.turn_model == "silence":
        return None
    from machine.listen.smart_turn import SmartTurn

    return SmartTurn(threshold=settings.turn_threshold).complete


def build_reply_checker(settings: MachineSettings, persona: str) -> ReplyChecker:
    """The reply checks of the three-strike policy, with alt-profanity-check and, when one is named, a
    text-classification model."""
    checks = settings.reply_checks
    classifier = None
    if checks.classifier_model is not None:
        from machine.reply.transformers_classifier import TextClassifier

        classifier = TextClassifier(
            checks.classifier_model, checks.classifier_labels, settings.chat_model.device
        )
    return ReplyChecker(checks, persona, profanity_probability, classifier)


def build_chat_model(settings: ChatModelSettings) -> ChatModel:
    """The chat model `machine.chat_model.backend` names: loaded here with transformers, or streamed from
    an OpenAI-compatible server; each backend module is imported only when it is chosen."""
    if settings.backend == "openai":
        from machine.reply.openai_chat import OpenAIChatModel

        return OpenAIChatModel(settings)
    from machine.reply.transformers_chat import TransformersChatModel

    return TransformersChatModel(settings)


def build_synthesizer(settings: SynthesizerSettings) -> Synthesizer:
    """The synthesiser `machine.synthesizer.backend` names; Coqui (and torch's TTS stack) is imported only
    when it is chosen."""
    if settings.backend == "coqui":
        from machine.speak.coqui_synthesizer import CoquiSynthesizer

        return CoquiSynthesizer(settings.coqui)
    return PiperSynthesizer(settings)


def _denoiser(name: str) -> Callable[[FloatAudio], FloatAudio] | None:
    if name == "rnnoise":
        from machine.listen.rnnoise_denoiser import RnnoiseDenoiser

        return RnnoiseDenoiser()
    return None


def build_captions(settings: MachineSettings) -> Captions | None:
    """Chatbox captions of the bot's speech when `machine.captions.enabled`; None when they are off.

    Raises ConfigError (naming `machine.captions.host`) when the host does not resolve."""
    return ChatboxCaptions.from_settings(settings.captions) if settings.captions.enabled else None
