"""Typed settings of the conversation runtime: the `machine` section of the YAML configuration.

Environment variables prefixed ``MACHINE_`` override the file, e.g. ``MACHINE_CHAT_MODEL__TEMPERATURE=0.5``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from companion_settings import BUNDLED, ConfigError, EnvOverFile, Patterns, load_section
from companion_settings import Section as _Section
from machine.ports import Sampling


class EndpointingSettings(_Section):
    """When an utterance starts and ends (silero-vad probability and level, with hysteresis), and when the
    speaker's turn is over (a turn-end model, or a silence)."""

    vad_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    min_level_dbfs: float = Field(-55.0, le=0.0)
    noise_margin_db: float = Field(10.0, ge=0.0, le=60.0)
    noise_floor_rise_db_per_s: float = Field(3.0, gt=0.0, le=100.0)
    start_chunks: int = Field(3, ge=1, le=50)
    turn_model: Literal["smart_turn", "silence"] = "smart_turn"
    turn_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    pause_ms: int = Field(160, ge=64, le=5000)
    max_silence_ms: int = Field(1200, ge=64, le=10_000)
    end_gap_ms: int = Field(600, ge=64, le=10_000)
    """With the turn-end model: a turn it calls finished ends after this much silence, not at once (the
    reply, ready by then, starts; a speaker who only paused and goes on within it keeps their turn)."""
    sure_threshold: float = Field(0.9, gt=0.0, lt=1.0)
    """With the turn-end model: at or above this probability the turn is surely finished..."""
    sure_gap_ms: int | None = Field(300, ge=64, le=10_000)
    """...and ends after this much silence (at most `end_gap_ms`; None: `end_gap_ms`): the silence that
    ends a turn follows how sure the model is."""
    speculate: bool = True
    retract_ms: int = Field(1500, ge=0, le=10_000)
    """With `speculate`: a speaker who goes on within this long after the bot started to answer (the end of
    their turn was guessed wrong) stops the reply, which is retracted (not remembered, not captioned), and
    what they said before and after is answered as one utterance; 0 never retracts."""
    end_silence_ms: int = Field(500, ge=64, le=5000)
    pre_roll_ms: int = Field(320, ge=0, le=2000)
    min_utterance_ms: int = Field(200, ge=0, le=5000)
    max_utterance_s: float = Field(30.0, gt=1.0, le=120.0)

    @model_validator(mode="after")
    def _pause_before_end(self) -> EndpointingSettings:
        end = self.max_silence_ms if self.turn_model == "smart_turn" else self.end_silence_ms
        if self.pause_ms >= end:
            name = "max_silence_ms" if self.turn_model == "smart_turn" else "end_silence_ms"
            raise ValueError(
                f"pause_ms ({self.pause_ms}) must be shorter than {name} ({end}), the silence that ends "
                "a turn: the pause is when the turn-end model judges and early work starts"
            )
        if self.turn_model == "smart_turn" and not self.pause_ms < self.end_gap_ms <= self.max_silence_ms:
            raise ValueError(
                f"end_gap_ms ({self.end_gap_ms}) must be longer than pause_ms ({self.pause_ms}) and at most "
                f"max_silence_ms ({self.max_silence_ms}): the silence after which a finished turn ends"
            )
        sure_gap = self.sure_gap_ms if self.sure_gap_ms is not None else self.end_gap_ms
        if self.turn_model == "smart_turn" and not (
            self.pause_ms < sure_gap <= self.end_gap_ms and self.turn_threshold <= self.sure_threshold
        ):
            raise ValueError(
                f"sure_gap_ms ({sure_gap}) must be longer than pause_ms ({self.pause_ms}) and at most "
                f"end_gap_ms ({self.end_gap_ms}), and sure_threshold ({self.sure_threshold}) at least "
                f"turn_threshold ({self.turn_threshold}): the surer the model, the shorter the silence"
            )
        return self


class LiveAudioSettings(_Section):
    """Devices and buffers for live audio."""

    input_device: str = Field("default", min_length=1)
    output_device: str = Field("default", min_length=1)
    block_ms: int = Field(20, ge=5, le=200)
    capture_queue_blocks: int = Field(250, ge=4, le=10_000)
    playback_queue_blocks: int = Field(50, ge=2, le=1000)
    output_gain: float = Field(1.0, gt=0.0, le=4.0)
    echo_max_delay_ms: int = Field(1500, ge=0, le=5000)
    echo_margin_db: float = Field(6.0, ge=0.0, le=40.0)
    barge_in: bool = False
    barge_in_ms: int = Field(480, ge=96, le=5000)
    denoiser: Literal["none", "rnnoise"] = "none"
    stall_timeout_s: float = Field(3.0, gt=0.1, le=60.0)
    reopen_initial_s: float = Field(0.5, gt=0.0, le=60.0)
    reopen_max_s: float = Field(10.0, gt=0.0, le=600.0)


class TranscriberSettings(_Section):
    """Speech to text with whisperx."""

    model: str = BUNDLED
    device: str = "cpu"
    compute_type: Literal["int8", "int8_float16", "float16", "float32", "default"] = "int8"
    language: str = Field("en", min_length=2, max_length=3)
    beam_size: int = Field(1, ge=1, le=10)
    cpu_threads: int = Field(2, ge=0, le=64)
    min_words: int = Field(1, ge=1, le=10)
    # Against words whisper invents at a segment's edges (issue #25; bench/transcription_edges.py and
    # docs/hearing.md): the audio cut to silero-vad's voice plus a pad, and a word looped more often than
    # the voice could hold written once. faster-whisper's sequential decoder heard the set better still;
    # with it and the trim the bot once answered its own echo over a 1 s loopback (not settled, see docs).
    decoder: Literal["sequential", "batched"] = "batched"
    trim_to_voice: bool = True
    trim_pad_ms: int = Field(300, ge=0, le=2000)
    collapse_repeats: bool = True


class ChatServerSettings(_Section):
    """An OpenAI-compatible server (vLLM, llama.cpp server, Ollama) that serves the chat model."""

    base_url: str = "http://127.0.0.1:8080/v1"
    model: str | None = Field(None, min_length=1)
    """The model name the server serves; required with `backend: openai`."""
    api_key_env: str = Field("OPENAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The environment variable the API key is read from (the key itself is never configured)."""
    connect_timeout_s: float = Field(5.0, gt=0.0, le=300.0)
    read_timeout_s: float = Field(60.0, gt=0.0, le=3600.0)
    stop: tuple[str, ...] = Field((), max_length=16)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:8080/v1")
        return value


HistoryStyle = Literal["turns", "notes"]
MemoryAnswers = Literal["off", "answer_only", "answer_then_model"]


class ChatModelSettings(_Section):
    """The reply: a transformers instruct model, or one served by an OpenAI-compatible server."""

    backend: Literal["transformers", "openai"] = "transformers"
    server: ChatServerSettings = ChatServerSettings()
    model: str = BUNDLED
    gguf_file: str | None = None
    device: str = "cpu"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    max_new_tokens: int = Field(60, ge=4, le=1024)
    max_sentences: int = Field(2, ge=1, le=20)
    first_clause_words: int = Field(3, ge=0, le=20)
    first_piece_max_words: int = Field(5, ge=0, le=50)
    release_before_dry_s: float = Field(0.5, ge=0.0, le=5.0)
    """After the first piece: when the voice is estimated to have said everything released within this
    many seconds, the sentence so far is released at a clause (mid-sentence, at a word) instead of
    waiting for its end (0 = whole sentences only)."""
    voice_seconds_per_word: float = Field(0.25, gt=0.0, le=2.0)
    """The voice's pace for that estimate, on the fast side (the bundled voice: 0.29 s a word over the
    hour soak's 129 replies, 0.26 for the fastest tenth)."""
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    repetition_penalty: float = Field(1.3, ge=1.0, le=2.0)
    no_repeat_ngram_size: int = Field(3, ge=0, le=10)
    seed: int | None = 0
    prompt_tokens: int = Field(1024, ge=128, le=131_072)
    cache_dir: Path | None = None
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = None
    load_in_4bit: bool = False
    compile: bool = False
    reuse_persona_cache: bool = True
    cpu_threads: int = Field(1, ge=0, le=256)
    """torch threads on the CPU (0 = torch's default: all cores)."""
    quantize: Literal["none", "int8"] = "int8"
    """On the CPU: int8 dynamic quantisation of the linear layers (ignored on other devices)."""
    history: HistoryStyle = "notes"
    """How the conversation so far is shown: `notes` (only what the user said, retold about them, in the
    system message) or `turns` (recent exchanges as chat turns, recollections quoted in the system
    message)."""
    memory_answers: MemoryAnswers = "answer_only"
    """A question about the user that something they told the bot answers is answered with it, said back
    to them (see :mod:`machine.reply.memory_answer`): `answer_only` (the bundled model's additions to it
    were often wrong: "You live in Lisbon." → "You can't live in a city called Lisbon."),
    `answer_then_model` (the model goes on from it; for bigger models) or `off`."""
    memory_answer_about_user: float = Field(0.375, ge=-1.0, le=1.0)
    """Least similarity of a question naming the user (my, I, me) to what they said, to answer from it."""
    memory_answer_about_other: float = Field(0.725, ge=-1.0, le=1.0)
    """The same for a question naming nobody ("What is the biggest goldfish called?")."""
    sees_images: bool = False
    """The model takes images (a vision-language model id or folder, or one served behind `backend:
    openai`): with `machine.vision`, a question about what the bot sees is sent with its latest view."""
    image_side_px: int = Field(512, ge=64, le=2048)
    """The view sent to a model that sees is downscaled to at most this many pixels a side."""

    @model_validator(mode="after")
    def _served_model_named(self) -> ChatModelSettings:
        if self.backend == "openai" and self.server.model is None:
            raise ValueError(
                "server.model is required with backend openai: name the model the server serves "
                "(e.g. the name vLLM was started with, or an Ollama tag such as llama3.2:3b)"
            )
        if self.sees_images and self.backend == "transformers" and self.model == BUNDLED:
            raise ValueError(
                "sees_images needs a vision-language model: the bundled SmolLM2 reads text only; name one "
                "in model (e.g. HuggingFaceTB/SmolVLM-256M-Instruct, internet needed once) or serve one "
                "(backend: openai)"
            )
        return self

    def sampling(self) -> Sampling:
        """The sampling of a first attempt at a reply."""
        return Sampling(
            temperature=self.temperature,
            top_p=self.top_p,
            repetition_penalty=self.repetition_penalty,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
        )


DEFAULT_BLOCKED_PATTERNS = (
    r"https?://|www\.|discord\.gg",  # links
    r"\b(kill|hurt|harm)\s+(yo)?ur\s*self\b|\bkys\b",  # self-harm incitement
    r"\b(ignore|disregard|forget)\s+(all\s+|your\s+|the\s+|my\s+)*(previous\s+|prior\s+)?(instructions|rules)\b",
    r"\bsystem prompt\b|\bas an ai( language)? model\b",  # leaking the prompt, breaking character
    r"\b(password|credit card|social security)\b",  # asking for secrets
)
"""What a reply must never match (case-insensitive), unless the configuration says otherwise."""


class ReplyCheckSettings(_Section):
    """The three-strike policy: what a reply must pass, and what happens when it does not."""

    max_attempts: int = Field(3, ge=1, le=10)
    give_up_line: str = Field("", max_length=200)
    language: str = Field("en", min_length=2, max_length=3)
    max_sentence_chars: int = Field(240, ge=20, le=2000)
    profanity_threshold: float = Field(0.8, gt=0.0, le=1.0)
    blocked_patterns: Patterns = DEFAULT_BLOCKED_PATTERNS
    persona_leak_words: int = Field(8, ge=0, le=100)
    opening_words: int = Field(3, ge=0, le=10)
    """A reply whose first this-many words open an earlier reply is a strike (0: off)."""
    echo_words: int = Field(6, ge=0, le=50)
    """A reply that says this many of the user's words in a row back is a strike (0: off)."""
    classifier_model: str | None = None
    classifier_labels: tuple[str, ...] = ("toxic",)
    classifier_threshold: float = Field(0.5, gt=0.0, le=1.0)


class CoquiSettings(_Section):
    """A Coqui TTS model: a model name (downloaded by coqui-tts) or a local checkpoint with its config."""

    model: str | None = Field(None, min_length=1)
    model_path: Path | None = None
    config_path: Path | None = None
    speaker: str | None = Field(None, min_length=1)
    language: str | None = Field(None, min_length=1)
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$")

    @model_validator(mode="after")
    def _one_source(self) -> CoquiSettings:
        if self.model is not None and self.model_path is not None:
            raise ValueError(
                "name either a model or a local model_path + config_path, not both (set model: null to use "
                "the local files)"
            )
        if (self.model_path is None) != (self.config_path is None):
            raise ValueError("model_path and config_path go together: a checkpoint and its config.json")
        return self


class SynthesizerSettings(_Section):
    """Text to speech: Piper (the default, its settings here) or Coqui (its own section)."""

    backend: Literal["piper", "coqui"] = "piper"
    voice: str = BUNDLED
    speaker_id: int | None = None
    length_scale: float = Field(1.0, gt=0.1, le=4.0)
    noise_scale: float = Field(0.667, ge=0.0, le=2.0)
    noise_w_scale: float = Field(0.8, ge=0.0, le=2.0)
    coqui: CoquiSettings = CoquiSettings()

    @model_validator(mode="after")
    def _coqui_has_a_model(self) -> SynthesizerSettings:
        if self.backend == "coqui" and self.coqui.model is None and self.coqui.model_path is None:
            raise ValueError(
                "backend is coqui but coqui names no model: set coqui.model (e.g. "
                "tts_models/en/ljspeech/vits) or coqui.model_path and coqui.config_path"
            )
        return self


class RecordedInputSettings(_Section):
    """How recorded WAV files are played into the runtime."""

    lead_silence_ms: int = Field(300, ge=0, le=10000)
    trail_silence_ms: int = Field(1000, ge=100, le=10000)
    reply_timeout_s: float = Field(120.0, gt=0.0)


class CaptionSettings(_Section):
    """Captions of the bot's speech in the VRChat chatbox, over OSC (see :mod:`machine.speak.captions`)."""

    enabled: bool = False
    host: str = Field("127.0.0.1", min_length=1, max_length=253, pattern=r"^[A-Za-z0-9._:%-]+$")
    port: int = Field(9000, ge=1, le=65535)
    min_interval_s: float = Field(1.5, ge=1.0, le=30.0)
    notify_sound: bool = False
    typing_indicator: bool = True


class ControlSettings(_Section):
    """Forgetting on demand over OSC (see :mod:`machine.process.osc_control`): what SIGUSR1 does on POSIX,
    on every platform. VRChat's own OSC ports are 9000 (it listens) and 9001 (it sends); OSC routers and
    other VRChat OSC apps usually take the next few, so the bot listens on 9020 by default."""

    enabled: bool = True
    host: str = Field("127.0.0.1", min_length=1, max_length=253, pattern=r"^[A-Za-z0-9._:%-]+$")
    """The address listened on: 127.0.0.1 = this machine only; 0.0.0.0 = every network interface."""
    port: int = Field(9020, ge=1, le=65535)
    avatar_parameter: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_./-]+$")
    """An avatar parameter (bool or int) whose change to true or non-zero forgets too, as VRChat sends it
    to `/avatar/parameters/NAME` (VRChat sends to 9001: launch it with ``--osc=9000:127.0.0.1:PORT`` or
    forward through an OSC router); null = none."""


class SpeakerSettings(_Section):
    """Telling speakers apart (a voice embedding per utterance, session-scoped, never stored)."""

    enabled: bool = True
    threshold: float = Field(0.72, ge=0.0, le=1.0)
    """Cosine similarity at or above which an utterance is a known speaker's (bench/crowd.py)."""
    forget_after_idle_s: float = Field(900.0, ge=1.0, le=7 * 24 * 3600.0)
    """Nobody spoke for this long: the session's voices are dropped (as a memory session expires)."""
    turn_on_change: bool = True
    """A change of voice ends a turn, also without a pause (needs `enabled`; bench/speaker_change.py)."""
    change_threshold: float = Field(0.6, ge=0.0, le=1.0)
    """Cosine similarity below which the voice after a point is another speaker's than the one before."""


class ReplyPolicySettings(_Section):
    """Whom the bot answers."""

    policy: Literal["always", "addressed", "main_speaker"] = "always"
    follow_up_s: float = Field(20.0, ge=0.0, le=600.0)
    """addressed: the speaker the bot just answered may go on without its name for this long."""
    name_similarity: float = Field(0.75, ge=0.5, le=1.0)
    """How close a word must be to the bot's name (whisper spells it several ways) to count as it."""
    aliases: list[str] = Field(default_factory=list)
    """Other names the bot answers to."""


class VisionSettings(_Section):
    """The bot's eyes (see :mod:`machine.vision`): what it watches, how often, and how much CPU it may take.

    With no `window` or `region`, the whole `monitor` is watched (1: the primary screen), so a VRChat window
    in front is seen. Frames are kept in memory only, the latest one at a time, and never written anywhere."""

    enabled: bool = False
    monitor: int = Field(1, ge=0, le=16)
    """mss's monitor number: 1 is the primary screen, 2 the next; 0 all of them together."""
    window: str | None = Field(None, min_length=1, max_length=200)
    """Watch the window whose title contains this (e.g. "VRChat"; Windows and X11), wherever it moves."""
    region: tuple[int, int, int, int] | None = None
    """Watch this part of the screen: left, top, width, height in pixels (instead of a window)."""
    camera: int | str | None = None
    """Watch a camera instead of the screen: its number (0: the first; a virtual camera such as OBS's
    counts), or a video file or stream URL."""
    fps: float = Field(2.0, gt=0.0, le=30.0)
    """Frames grabbed a second; the reader takes the latest one and drops the rest."""
    max_core_share: float = Field(0.14, gt=0.0, le=1.0)
    """Reading (and grabbing) pauses so that the eyes take at most this share of one CPU core on average
    (with the budget's burst of 1 CPU s, 0.14 keeps any three minutes under 15 %)."""
    settle_s: float = Field(1.0, ge=0.0, le=30.0)
    """A chatbox message becomes a turn once its text has stayed the same this long (it grows as typed)."""
    present_s: float = Field(10.0, gt=0.0, le=600.0)
    """A nameplate seen within this long counts its player as present."""
    threads: int = Field(1, ge=1, le=16)
    """CPU threads the text reader may use (one leaves the voice pipeline its cores)."""

    @field_validator("region")
    @classmethod
    def _positive_size(cls, value: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
        if value is not None and (value[2] < 16 or value[3] < 16):
            raise ValueError("width and height must be at least 16 pixels: [left, top, width, height]")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> VisionSettings:
        if sum(target is not None for target in (self.window, self.region, self.camera)) > 1:
            raise ValueError("name one of window, region and camera (none: the whole monitor)")
        return self


class MachineSettings(EnvOverFile):
    """Everything the conversation runtime reads from the `machine` section."""

    model_config = SettingsConfigDict(
        env_prefix="MACHINE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    bot_name: str = Field("Celeste", min_length=1, max_length=40)
    persona_file: Path = Path("persona.md")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    memory_report_s: float | None = Field(None, ge=1.0)
    """Log where the process's memory is every this many seconds (None: never); see
    `machine/process/memory_report.py`."""
    memory_block: str = Field("celeste", pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")
    audio: LiveAudioSettings = LiveAudioSettings()
    endpointing: EndpointingSettings = EndpointingSettings()
    transcriber: TranscriberSettings = TranscriberSettings()
    chat_model: ChatModelSettings = ChatModelSettings()
    reply_checks: ReplyCheckSettings = ReplyCheckSettings()
    synthesizer: SynthesizerSettings = SynthesizerSettings()
    recorded: RecordedInputSettings = RecordedInputSettings()
    captions: CaptionSettings = CaptionSettings()
    control: ControlSettings = ControlSettings()
    speakers: SpeakerSettings = SpeakerSettings()
    reply_policy: ReplyPolicySettings = ReplyPolicySettings()
    vision: VisionSettings = VisionSettings()

    @field_validator("bot_name")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value or not value.strip():
            raise ValueError("must be a single non-blank line")
        return value.strip()

    def persona(self) -> str:
        """The persona prompt, read from `persona_file`."""
        try:
            text = self.persona_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"machine.persona_file: cannot read {self.persona_file} ({exc.strerror}); "
                "point it at a text file holding the persona prompt"
            ) from None
        if not text:
            raise ConfigError(f"machine.persona_file: {self.persona_file} is empty; write the persona there")
        return text.replace("{bot_name}", self.bot_name)


def load_settings(explicit: Path | None = None) -> MachineSettings:
    """Read and validate the `machine` section; a relative persona path is taken from the file's folder."""
    settings, path = load_section(MachineSettings, "machine", explicit)
    if not settings.persona_file.is_absolute():
        settings = settings.model_copy(update={"persona_file": path.parent / settings.persona_file})
    return settings
