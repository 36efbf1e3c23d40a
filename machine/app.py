"""The composition root: everything a run needs, built from the settings in one place, torn down in reverse.

    with open_app(settings, memory_settings, LiveAudio(), on_turn) as app:
        app.run()

A run, top to bottom: signal handling → IO (live devices, recorded files, or parts given) → memory (one
InfiniMemory block and its session-expiry timer) → forgetting on demand over OSC (live, with the block) →
eyes (with `machine.vision.enabled`) → the runtime, scheduling its stages:

    source → hearing (echo gate, silero-vad, Smart Turn, denoiser) → transcriber (whisperx)
           → whom to answer (voices, reply policy) → replier (memory + chat model + checks)
           → voice (Piper or Coqui, synthesising ahead) → sink
    screen → eyes (capture thread, reader: chatbox bubbles and nameplates) → typed turns, who is around

Backends (:mod:`machine.backends`) are imported here only, each only when the settings choose it. Tests
and benchmarks swap a part by giving it in :class:`Parts`, never by patching a builder.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from machine.backends import bundled_models
from machine.backends.infinimemory import open_memory
from machine.crowd.attribution import Crowd
from machine.crowd.policy import ReplyPolicy
from machine.crowd.speaker_change import SpeakerChange
from machine.crowd.speakers import SpeakerTracker
from machine.listen.echo_gate import EchoGate
from machine.listen.endpointing import Endpointer, TurnEnd
from machine.listen.hearing import Hearing
from machine.ports import (
    AudioSink,
    AudioSource,
    Captions,
    ChatModel,
    ConversationMemory,
    FloatAudio,
    Sight,
    Synthesizer,
    TextEmbedder,
    TextReader,
    Transcriber,
    VoiceActivity,
    VoiceEmbedder,
)
from machine.process.malloc_arenas import FreeMemoryReturner
from machine.process.memory_report import MemoryReporter
from machine.process.osc_control import OscControl
from machine.process.stop_signals import StopSignals
from machine.reply.checks import ReplyChecker
from machine.reply.memory_answer import MemoryAnswer
from machine.reply.thinking import Thinker
from machine.runtime import Runtime
from machine.settings import (
    ChatModelSettings,
    EndpointingSettings,
    MachineSettings,
    SynthesizerSettings,
    VisionSettings,
)
from machine.shared.levels import PlaybackLevels
from machine.speak.speaker import Speaker
from machine.turn_metrics import TurnRecord
from memory_store import MemoryStoreSettings

if TYPE_CHECKING:  # the eyes (scipy, Pillow, mss, the OCR models) are imported only when vision is on
    from machine.vision.capture import Grabber
    from machine.vision.eyes import Eyes

__all__ = [
    "App",
    "Conversation",
    "GivenAudio",
    "LiveAudio",
    "OpenedIO",
    "Parts",
    "RecordedAudio",
    "build_chat_model",
    "build_eyes",
    "build_reply_checker",
    "build_runtime",
    "build_synthesizer",
    "open_app",
]

log = logging.getLogger(__name__)

OnTurn = Callable[[TurnRecord], None]


class Conversation(Protocol):
    """What a run drives: the runtime (or a stand-in given in :class:`Parts`)."""

    def run(self, source: AudioSource, on_listening: Callable[[], None] = ...) -> list[TurnRecord]:
        """Converse until the source ends or `stop` is called; `on_listening` once it listens."""
        ...

    def stop(self) -> None:
        """End the run (from any thread, a signal handler included)."""
        ...

    def reset(self) -> None:
        """Abandon the turn in flight."""
        ...

    def forget(self, forget_memory: Callable[[], None]) -> None:
        """Forget the conversation once the turn in flight has stopped."""
        ...


BuildConversation = Callable[[ConversationMemory, AudioSink, OnTurn], Conversation]


@dataclass(frozen=True)
class Parts:
    """Parts given instead of built from the settings (tests, benchmarks, embedding)."""

    chat_model: ChatModel | None = None
    transcriber: Transcriber | None = None
    synthesizer: Synthesizer | None = None
    voice_activity: VoiceActivity | None = None
    memory: ConversationMemory | None = None
    """A memory instead of the InfiniMemory block (nothing is opened)."""
    embedder: TextEmbedder | None = None
    """With `memory`: the embedder answers from memory use (None: no answers from memory)."""
    conversation: BuildConversation | None = None
    """Builds what runs instead of the runtime, from the memory, the sink and the turn callback."""
    warm_up: bool = True
    screen: Callable[[], Grabber] | None = None
    """With `machine.vision.enabled`: opens what frames come from, instead of the screen."""
    text_reader: TextReader | None = None
    """With `machine.vision.enabled`: reads text instead of the bundled OCR models."""


@dataclass
class OpenedIO:
    """What an IO choice opened for a run: where the bot's voice goes, and where its input comes from."""

    sink: AudioSink
    source: Callable[[Conversation], AudioSource]
    """Makes the source once the runtime exists (a live source resets the turn when its device drops)."""
    playback_levels: PlaybackLevels | None = None
    """What the sink plays, for the echo gate (live audio only)."""
    interactive: bool = False
    """People talk to this run (live audio): with a memory block, it listens for forgets over OSC."""


class LiveAudio:
    """The configured audio devices (PortAudio), with the echo gate and barge-in."""

    def __init__(self) -> None:
        self.device_source: AudioSource | None = None
        """The capture source, once made (for its dropped-block count)."""

    def open(self, settings: MachineSettings, stack: ExitStack) -> OpenedIO:
        """Open PortAudio and the output device; a wrong input device fails here, before models load."""
        from machine.audio.capture import DeviceSource
        from machine.audio.devices import open_portaudio, resolve
        from machine.audio.playback import DeviceSink

        audio = open_portaudio()
        stack.callback(audio.terminate)
        resolve(audio, settings.audio.input_device, "input")
        levels = PlaybackLevels()
        sink = DeviceSink(audio, settings.audio, levels)
        stack.callback(sink.close)

        def source(runtime: Conversation) -> AudioSource:
            self.device_source = DeviceSource(audio, settings.audio, on_interrupted=runtime.reset)
            return self.device_source

        return OpenedIO(sink, source, levels, interactive=True)


@dataclass
class RecordedAudio:
    """WAV files in, one WAV file per reply out (`reply-NNN.wav` in `output`)."""

    inputs: list[Path]
    output: Path
    realtime: bool
    turns_so_far: Callable[[], int] | None = None
    """How many turns have finished (the source tells from it which files started none)."""
    unheard: list[Path] = field(default_factory=list)
    """Files in which no speech was heard, once the run is over."""

    def open(self, settings: MachineSettings, stack: ExitStack) -> OpenedIO:
        """The source over the files and the sink writing the replies."""
        from machine.audio.recorded import RecordedSource, WavReplySink

        recorded = RecordedSource(
            self.inputs, settings.recorded, realtime=self.realtime, turns_so_far=self.turns_so_far
        )
        stack.callback(lambda: self.unheard.extend(recorded.unheard))
        return OpenedIO(WavReplySink(self.output, realtime=self.realtime), lambda runtime: recorded)


@dataclass
class GivenAudio:
    """A source and a sink made by the caller (tests and benchmarks)."""

    source: AudioSource
    sink: AudioSink
    playback_levels: PlaybackLevels | None = None
    interactive: bool = False
    """As live audio is: with a memory block, the run listens for forgets over OSC."""

    def open(self, settings: MachineSettings, stack: ExitStack) -> OpenedIO:
        """Hands the given parts on."""
        return OpenedIO(self.sink, lambda runtime: self.source, self.playback_levels, self.interactive)


class RunIO(Protocol):
    """An IO choice: live devices, recorded files, or parts given."""

    def open(self, settings: MachineSettings, stack: ExitStack) -> OpenedIO:
        """Open what the run reads and writes; register its closing on `stack`."""
        ...


@dataclass
class App:
    """One run, built: call :meth:`run` inside :func:`open_app`'s `with`."""

    runtime: Conversation
    source: AudioSource
    signals: StopSignals

    def run(self, on_listening: Callable[[], None] = lambda: None) -> list[TurnRecord]:
        """Converse until the source ends, `stop` is set, or a stop signal arrives; `on_listening` is
        called once the models are warm and the bot listens."""
        return self.runtime.run(self.source, on_listening)


@contextlib.contextmanager
def open_app(
    settings: MachineSettings,
    memory_settings: MemoryStoreSettings,
    io: RunIO,
    on_turn: OnTurn,
    *,
    parts: Parts | None = None,
    fresh: bool = False,
    stop: threading.Event | None = None,
) -> Iterator[App]:
    """Build a run (signals, IO, memory, OSC control, runtime) and tear it down in reverse when the `with`
    ends.

    `fresh` forgets the memory block's session before the conversation starts; `stop`, once set, ends
    the run as a stop signal would. After a turn, the memory malloc keeps free goes back to the system
    (:class:`FreeMemoryReturner`), so the resident size stays flat over an evening."""
    parts = parts or Parts()
    returner = FreeMemoryReturner()

    def turn_ended(record: TurnRecord) -> None:
        on_turn(record)
        returner.after_turn()

    with ExitStack() as stack:
        stack.callback(returner.close)
        signals = stack.enter_context(StopSignals())
        if settings.memory_report_s is not None:
            stack.callback(MemoryReporter(settings.memory_report_s).start().stop)
        opened = io.open(settings, stack)
        forget: Callable[[], None] | None = None
        embedder = parts.embedder
        if parts.memory is None:
            block = stack.enter_context(open_memory(memory_settings, settings.memory_block, fresh=fresh))
            memory: ConversationMemory = block
            embedder, forget = block.embedder, block.forget
        else:
            memory = parts.memory
        control = None  # forgetting on demand over OSC: bound now, so a port in use stops before the models
        if forget is not None and opened.interactive and settings.control.enabled:
            control = stack.enter_context(OscControl(settings.control))
        eyes = build_eyes(settings, parts) if settings.vision.enabled else None
        if eyes is not None:
            stack.callback(eyes.stop)
            if forget is not None:
                forget = _also(forget, eyes.forget)  # who was seen goes with the session
        if parts.conversation is not None:
            runtime: Conversation = parts.conversation(memory, opened.sink, turn_ended)
        else:
            built = build_runtime(
                settings, memory, opened.sink, turn_ended, opened.playback_levels, embedder, parts, eyes
            )
            if eyes is not None:
                eyes.start(built.typed, built.working)
            runtime = built
        source = opened.source(runtime)
        signals.attach(runtime, forget)
        if control is not None and forget is not None:
            control.attach(runtime, forget)
        if stop is not None:
            signals.stop_when_set(runtime, stop)
        yield App(runtime, source, signals)


def _also(first: Callable[[], None], then: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        first()
        then()

    return both


def build_eyes(settings: MachineSettings, parts: Parts) -> Eyes:
    """The capture thread and the reader over the screen, a camera (or `parts.screen`), not started yet. A
    window, monitor or camera that is not there fails here, before the models load (ScreenError says what
    to set)."""
    from machine.vision.eyes import Eyes

    vision = settings.vision
    open_frames = parts.screen
    if open_frames is None:
        open_frames = _frame_source(vision)
        open_frames().close()  # a window, monitor or camera that is not there fails now

    reader = parts.text_reader
    if reader is None:
        from machine.backends.rapid_ocr import RapidTextReader

        reader = RapidTextReader(vision.threads)
    return Eyes(vision, open_frames, reader)


def _frame_source(vision: VisionSettings) -> Callable[[], Grabber]:
    """What opens the configured camera (OpenCV), or else the screen (mss)."""
    camera = vision.camera
    if camera is not None:
        from machine.vision.camera import Camera

        return lambda: Camera(camera)
    from machine.vision.screen import Screen

    return lambda: Screen(vision)


def build_runtime(
    settings: MachineSettings,
    memory: ConversationMemory,
    sink: AudioSink,
    on_turn: OnTurn,
    playback_levels: PlaybackLevels | None = None,
    embedder: TextEmbedder | None = None,
    parts: Parts | None = None,
    sight: Sight | None = None,
) -> Runtime:
    """Load every model named in the settings (or given in `parts`) and connect the stages into a runtime
    that plays into `sink`.

    `playback_levels` (what the sink plays, for live audio) turns on the echo gate, and with it barge-in
    when `machine.audio.barge_in` is on. `embedder` (the memory's) lets the bot answer questions about
    the user from what they told it (`machine.chat_model.memory_answers`). `sight` (the eyes) tells the
    reply and the crowd who is around, and shows a model that sees the bot's view."""
    parts = parts or Parts()
    persona = settings.persona()
    captions = build_captions(settings)  # first: a wrong host fails before the models load
    encoder = build_voice_encoder(settings)
    change = (
        SpeakerChange(encoder, settings.speakers.change_threshold)
        if encoder is not None and settings.speakers.turn_on_change
        else None
    )
    hearing = build_hearing(settings, playback_levels, parts.voice_activity, change)
    transcriber = parts.transcriber or _transcriber(settings)
    thinker = Thinker(
        parts.chat_model or build_chat_model(settings.chat_model),
        memory,
        persona,
        settings.bot_name,
        settings.chat_model,
        settings.reply_checks,
        build_reply_checker(settings, persona),
        build_memory_answer(settings, embedder),
        sight,
    )
    speaker = Speaker(parts.synthesizer or build_synthesizer(settings.synthesizer), sink)
    return Runtime(
        hearing,
        transcriber,
        thinker,
        speaker,
        on_turn,
        chunk_queue_size=settings.audio.capture_queue_blocks,
        on_activity=memory.touch,
        captions=captions,
        warm_up=parts.warm_up,
        crowd=build_crowd(settings, encoder, sight),
    )


def _transcriber(settings: MachineSettings) -> Transcriber:
    from machine.backends.whisperx_transcriber import WhisperxTranscriber

    return WhisperxTranscriber(settings.transcriber, settings.bot_name)


def build_memory_answer(settings: MachineSettings, embedder: TextEmbedder | None) -> MemoryAnswer | None:
    """The answer from memory to questions about the user, when an embedder is at hand (the Thinker
    heeds `machine.chat_model.memory_answers`)."""
    chat = settings.chat_model
    if embedder is None:
        return None
    return MemoryAnswer(
        embedder, chat.memory_answer_about_user, chat.memory_answer_about_other, settings.bot_name
    )


def build_voice_encoder(settings: MachineSettings) -> VoiceEmbedder | None:
    """The bundled GE2E voice encoder, unless `machine.speakers.enabled` is off."""
    if not settings.speakers.enabled:
        return None
    from machine.backends.voice_encoder import VoiceEncoder  # torch and librosa: only when used

    return VoiceEncoder(bundled_models.voice_encoder_weights())


def build_crowd(
    settings: MachineSettings, encoder: VoiceEmbedder | None, sight: Sight | None = None
) -> Crowd:
    """Speaker identification (with `encoder`; None: one voice), the reply policy, and with `sight` names
    for voices from the nameplate in view."""
    return Crowd(
        encoder,
        SpeakerTracker(settings.speakers.threshold, settings.bot_name),
        ReplyPolicy(settings.reply_policy, settings.bot_name),
        settings.speakers.forget_after_idle_s,
        sight,
    )


def build_hearing(
    settings: MachineSettings,
    playback_levels: PlaybackLevels | None,
    voice_activity: VoiceActivity | None = None,
    change: SpeakerChange | None = None,
) -> Hearing:
    """The bot's ears: silero-vad endpointing (or the `voice_activity` given), the optional denoiser,
    on live audio the echo gate and barge-in, and with `change` a turn ended where the voice changes."""
    audio = settings.audio
    gate = (
        EchoGate(playback_levels, audio.echo_margin_db, audio.echo_max_delay_ms)
        if playback_levels is not None
        else None
    )
    endpointing = settings.endpointing
    if voice_activity is None:
        from machine.backends.silero_vad import SileroVoiceActivity

        voice_activity = SileroVoiceActivity()
    return Hearing(
        Endpointer(
            voice_activity, endpointing, turn_end_model(endpointing), change.changed if change else None
        ),
        gate,
        barge_in_ms=audio.barge_in_ms if audio.barge_in and gate is not None else None,
        max_held_s=2 * endpointing.max_utterance_s,
        denoiser=_denoiser(audio.denoiser),
        speculate=endpointing.speculate,
        retract_ms=endpointing.retract_ms if endpointing.speculate else 0,
    )


def turn_end_model(settings: EndpointingSettings) -> TurnEnd | None:
    """The turn-end model `turn_model` names (None: the turn ends after a silence)."""
    if settings.turn_model == "silence":
        return None
    from machine.backends.smart_turn import SmartTurn

    return SmartTurn().probability  # the endpointer grades it (turn_threshold, sure_threshold)


def build_reply_checker(settings: MachineSettings, persona: str) -> ReplyChecker:
    """The reply checks of the three-strike policy, with alt-profanity-check and, when one is named, a
    text-classification model."""
    from machine.backends.profanity_classifier import profanity_probability

    checks = settings.reply_checks
    classifier = None
    if checks.classifier_model is not None:
        from machine.backends.transformers_classifier import TextClassifier

        classifier = TextClassifier(
            checks.classifier_model, checks.classifier_labels, settings.chat_model.device
        )
    return ReplyChecker(checks, persona, profanity_probability, classifier)


def build_chat_model(settings: ChatModelSettings) -> ChatModel:
    """The chat model `machine.chat_model.backend` names: loaded here with transformers, or streamed from
    an OpenAI-compatible server; each backend module is imported only when it is chosen."""
    if settings.backend == "openai":
        from machine.backends.openai_chat import OpenAIChatModel

        return OpenAIChatModel(settings)
    from machine.backends.transformers_chat import TransformersChatModel

    return TransformersChatModel(settings)


def build_synthesizer(settings: SynthesizerSettings) -> Synthesizer:
    """The synthesiser `machine.synthesizer.backend` names; Coqui (and torch's TTS stack) is imported only
    when it is chosen."""
    if settings.backend == "coqui":
        from machine.backends.coqui_synthesizer import CoquiSynthesizer

        return CoquiSynthesizer(settings.coqui)
    from machine.backends.piper_synthesizer import PiperSynthesizer

    return PiperSynthesizer(settings)


def _denoiser(name: str) -> Callable[[FloatAudio], FloatAudio] | None:
    if name == "rnnoise":
        from machine.backends.rnnoise_denoiser import RnnoiseDenoiser

        return RnnoiseDenoiser()
    return None


def build_captions(settings: MachineSettings) -> Captions | None:
    """Chatbox captions of the bot's speech when `machine.captions.enabled`; None when they are off.

    Raises ConfigError (naming `machine.captions.host`) when the host does not resolve."""
    from machine.speak.captions import ChatboxCaptions

    return ChatboxCaptions.from_settings(settings.captions) if settings.captions.enabled else None
