"""The small interfaces that keep backends and stages swappable, and the frozen values that cross them.

Backends (:mod:`machine.backends`, one vendor each) implement the model ports (voice activity,
transcriber, chat model, synthesiser, embedders); the stages (:mod:`machine.listen`, :mod:`machine.crowd`,
:mod:`machine.reply`, :mod:`machine.speak`) implement the stage ports the runtime schedules (`Ears`,
`WhomToAnswer`, `Replier`, `Voice`). The composition root (:mod:`machine.app`) picks and connects them.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
"""Every audio signal inside the runtime is 16 kHz mono float32 in [-1, 1]."""

CHUNK_SAMPLES = 512
"""The processing worker consumes fixed chunks of 512 samples (32 ms)."""

CHUNK_MS = CHUNK_SAMPLES * 1000 / SAMPLE_RATE
"""The length of one chunk in milliseconds."""

FloatAudio = npt.NDArray[np.float32]


class DeviceNotFoundError(LookupError):
    """The configured device does not exist; the message lists the devices that do.

    `reason` is the one-line cause alone (e.g. "no input device matches 'CABLE'"), for a log line when a
    device that was open goes missing: that is a transient fault, not a configuration error."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message.splitlines()[0]


class AudioInputError(ValueError):
    """Audio that the runtime cannot use, with the reason and how to fix it."""


@dataclass(frozen=True)
class AudioChunk:
    """One fixed-size chunk of input audio and the monotonic time its last sample arrived."""

    samples: FloatAudio
    arrived_at: float


@dataclass(frozen=True)
class Utterance:
    """A stretch of speech closed by the endpointer, with its pre-roll."""

    samples: FloatAudio
    last_voiced_at: float
    """Monotonic time at which the last voiced chunk arrived."""
    endpoint_at: float
    """Monotonic time at which the endpointer decided the utterance was over."""
    truncated: bool = False
    """True when the utterance hit the maximum length and was cut."""

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return len(self.samples) / SAMPLE_RATE


@dataclass(frozen=True)
class Transcript:
    """What the transcriber heard."""

    text: str
    language: str = "en"
    words: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "words", sum(1 for token in self.text.split() if any(c.isalnum() for c in token))
        )

    @property
    def has_words(self) -> bool:
        """False for an empty or noise-only transcript (only punctuation or blanks)."""
        return self.words > 0


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat prompt."""

    role: str
    content: str
    image: bytes | None = field(default=None, repr=False)
    """A JPEG shown with the message (the bot's view, for a model that sees); never logged."""


@dataclass(frozen=True)
class Sampling:
    """How one reply is sampled; a retry after a strike samples differently (:meth:`retry`)."""

    temperature: float
    top_p: float
    repetition_penalty: float
    max_new_tokens: int
    seed: int | None = None

    def retry(self, attempt: int) -> Sampling:
        """The sampling for attempt `attempt` (0 = this one): warmer, more averse to repeating itself, and
        with another seed, so a regenerated reply does not repeat the one that failed."""
        if attempt == 0:
            return self
        return replace(
            self,
            temperature=min(1.2, max(self.temperature, 0.5) + 0.15 * attempt),
            repetition_penalty=min(2.0, self.repetition_penalty + 0.1 * attempt),
            seed=None if self.seed is None else self.seed + attempt,
        )


def reply_seed(seed: int, prompt: Sequence[object]) -> int:
    """The seed of one reply: the configured seed mixed with the prompt (token ids, or the messages'
    texts), so the same prompt gets the same reply (repeatable runs and tests) while different prompts
    draw different random numbers.

    Seeding every reply with the configured seed itself draws every reply's first token with the same
    noise: torch samples one token as argmax(p / q) with q exponential noise, so the token whose noise is
    smallest under that seed wins far beyond its probability. With seed 0 that token is "The" (its noise is
    0.024, "I"'s 1.35): 11 of 12 ordinary questions opened with "The" where the model's own distribution
    expects 0.9 of 12 (issue #25 item 8; docs/replies.md). A server that honours a request's seed (vLLM,
    llama.cpp) repeats its noise the same way."""
    key = f"{seed}:" + "\x1f".join(str(item) for item in prompt)
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") & (2**63 - 1)


@dataclass(frozen=True)
class SpeechAudio:
    """Synthesised audio for one sentence, at the synthesiser's own rate."""

    samples: FloatAudio
    sample_rate: int


@dataclass(frozen=True)
class Exchange:
    """One remembered (user question, bot answer) pair."""

    question: str
    answer: str
    speaker: str | None = None
    """Who asked (see :mod:`machine.crowd.speakers`), when the bot tells speakers apart."""


@dataclass(frozen=True)
class MemoryContext:
    """What memory offers the prompt for one user input."""

    recollections: tuple[Exchange, ...] = ()
    """Older exchanges recalled because they resemble the input, best first."""
    window: tuple[Exchange, ...] = ()
    """The most recent exchanges, oldest first, without those recalled."""


class VoiceActivity(Protocol):
    """Speech probability for one 512-sample chunk at 16 kHz."""

    def probability(self, chunk: FloatAudio) -> float:
        """How likely the chunk holds speech, in [0, 1]."""
        ...

    def reset(self) -> None:
        """Forget the recurrent state (between utterances)."""
        ...


class Transcriber(Protocol):
    """Speech to text on an already endpointed utterance."""

    def transcribe(self, samples: FloatAudio) -> Transcript:
        """Transcribe 16 kHz mono float32 audio."""
        ...


ReplyStream = Generator[str, None, bool]
"""A chat model's reply: text pieces, then whether it was cut at the token limit (mid-sentence)."""


class ChatModel(Protocol):
    """An instruct model that streams its reply as text pieces."""

    def stream(self, messages: list[ChatMessage], cancel: threading.Event, sampling: Sampling) -> ReplyStream:
        """Yield text pieces of the reply; stop early when `cancel` is set or the consumer stops. When the
        last message is the assistant's, the reply was begun with it: only what follows is yielded. The
        generator's return value is True when the reply was cut at `sampling.max_new_tokens`."""
        ...

    def count_tokens(self, messages: list[ChatMessage]) -> int:
        """How many tokens the prompt for `messages` takes (an estimate where the tokenizer is remote)."""
        ...


class Synthesizer(Protocol):
    """Text to speech, one sentence at a time."""

    @property
    def sample_rate(self) -> int:
        """Rate of the audio this synthesiser yields."""
        ...

    def synthesize(self, text: str) -> Iterator[SpeechAudio]:
        """Yield audio for `text`, one chunk per sentence or less."""
        ...

    def rest(self) -> None:
        """A turn is over: give back the memory kept for the next sentence (called off the reply's path,
        possibly while another thread synthesises)."""
        ...


@dataclass(frozen=True)
class PlaybackReport:
    """How one reply's audio fared on its way out."""

    synthesised_s: float = 0.0
    """Seconds of audio handed to the sink."""
    delivered_s: float = 0.0
    """Seconds of it that reached the device (less when the reply was cut)."""
    underruns: int = 0
    """Times the device ran dry in the middle of a sentence (each is an audible hole)."""
    paused_s: float = 0.0
    """Silence between sentences while the next one was still being generated or synthesised."""


Deliver = Callable[[AudioChunk], None]
"""Hands one input chunk to the runtime (never blocks)."""
WaitForTurn = Callable[[float], bool]
"""Blocks until the bot listens again (False on timeout or stop); a recorded source waits between files."""


class AudioSource(Protocol):
    """Something that pushes input chunks into the runtime until it is done or told to stop."""

    def run(self, deliver: Deliver, wait_for_turn: WaitForTurn, stopping: threading.Event) -> None:
        """Deliver chunks; return when the input is over (or `stopping` is set)."""
        ...


class AudioSink(Protocol):
    """Where the bot's voice goes: a device, or one WAV file per reply."""

    def begin_reply(self, sample_rate: int) -> None:
        """Start a new reply at `sample_rate`."""
        ...

    def play(self, audio: FloatAudio, cancel: threading.Event) -> None:
        """Queue audio to be played after what is queued already; may block while the queue is full.
        When `cancel` is set, stop at once and drop what is queued."""
        ...

    def end_reply(self, cancel: threading.Event) -> PlaybackReport:
        """Wait until the reply has been heard (or `cancel` is set), close it, and say how it went."""
        ...


class VoiceEmbedder(Protocol):
    """Speech → a unit vector standing for the voice (see :mod:`machine.backends.voice_encoder`)."""

    def embed(self, speech: FloatAudio) -> np.ndarray:
        """The voice of one utterance; ValueError for empty or non-finite audio."""
        ...


class TextEmbedder(Protocol):
    """Texts in, one unit-length vector per text out (cosine similarity is the dot product)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text."""
        ...


class ConversationMemory(Protocol):
    """The conversation so far: what to show the model, and what to keep."""

    def context(self, user_input: str, speaker: str | None = None) -> MemoryContext:
        """Recollections and the recent window for this input (`speaker`'s own recollections first);
        never raises."""
        ...

    def remember(self, question: str, answer: str, speaker: str | None = None) -> None:
        """Keep one exchange (and who asked)."""
        ...

    def touch(self) -> None:
        """Something was heard or said: the session goes on (never raises)."""
        ...


class Captions(Protocol):
    """What the bot says, shown as text (the VRChat chatbox) for players who read instead of listen.

    Every method returns at once and never raises: captions must not hold up or stop the conversation."""

    def thinking(self) -> None:
        """The bot is working out a reply (a typing indicator goes on)."""
        ...

    def saying(self, sentence: str, duration_s: float) -> None:
        """`sentence` starts playing now and lasts `duration_s` seconds: show it in step with the voice."""
        ...

    def idle(self) -> None:
        """The bot stopped thinking or speaking: the indicator goes off, unspoken text is dropped."""
        ...

    def close(self) -> None:
        """Stop showing anything and release the connection."""
        ...


# --- the stages the runtime schedules -------------------------------------------------------------


class Mode(str, Enum):
    """What the bot is doing, as far as hearing is concerned."""

    OFF = "off"
    LISTENING = "listening"
    PENDING = "pending"
    """Speech before a pause was handed on early; the turn may still go on (set by hearing itself)."""
    BUSY = "busy"
    SPEAKING = "speaking"


@dataclass(frozen=True)
class Heard:
    """What one chunk led to: an utterance to answer (final, or early: the speaker only paused), the end
    of the turn an early utterance belongs to (`confirmed`), the speaker going on after it (`resumed`),
    or a barge-in."""

    utterance: Utterance | None = None
    final: bool = True
    confirmed: bool = False
    resumed: bool = False
    barge_in: bool = False
    early_id: int = 0
    """Which handed-on utterance `utterance`, `confirmed` or `resumed` is about (0: none)."""


class Ears(Protocol):
    """Hearing: what each input chunk leads to, whatever the bot is doing (see :mod:`machine.listen`).
    `hear` is called from the processing worker; the rest from the event loop."""

    @property
    def listening(self) -> bool:
        """Whether nothing heard is waiting for the bot."""
        ...

    @property
    def heard_sound(self) -> bool:
        """Whether the last chunk was louder than the background (speech or not)."""
        ...

    @property
    def retract_s(self) -> float:
        """How long after the bot starts to answer the speaker going on still retracts the reply."""
        ...

    def hear(self, chunk: AudioChunk) -> Heard | None:
        """Take one input chunk; returns what it led to, if anything."""
        ...

    def set_mode(self, mode: Mode, taken: int | None = None) -> Utterance | None:
        """Switch mode; entering LISTENING hands back an utterance held meanwhile, to be answered now."""
        ...

    def drop_early(self, early_id: int) -> None:
        """The turn of early utterance `early_id` closed before the speaker's turn ended."""
        ...

    def warm_up(self) -> None:
        """Run the models once, so the first real chunk is not slowed by loading."""
        ...


@dataclass(frozen=True)
class Attribution:
    """Who said it, and whether the bot answers."""

    speaker: str
    addressed: bool
    crowd: bool = False
    """More than one voice in the session, or the speaker gave their name: the prompt says who is who
    (one unnamed voice is just "the person you are talking with")."""


class WhomToAnswer(Protocol):
    """Who said a turn and whether the bot answers it (see :mod:`machine.crowd`); one caller at a time."""

    def typed(self, name: str | None, text: str, now: float) -> Attribution:
        """Who typed a chatbox message (`name`: the one on their nameplate, None: unreadable) and whether
        the bot answers it."""
        ...

    def voice(self, speech: FloatAudio) -> np.ndarray | None:
        """The utterance's voice embedding (run it beside the transcription), or None."""
        ...

    def attribute(
        self, voice: np.ndarray | None, transcript: str, now: float, learn: bool = True
    ) -> Attribution:
        """Who said `transcript` in `voice`, and whether the bot answers; `learn` off leaves the session
        as it was (a turn that may still be dropped)."""
        ...

    def answered(self, speaker: str, now: float) -> None:
        """The bot finished a reply to `speaker`."""
        ...

    def forget(self) -> None:
        """The session ended: every speaker and voice is dropped."""
        ...

    def warm_up(self) -> None:
        """Embed a voice once, so the first turn's embedding does not pay the first call's costs."""
        ...


@dataclass(frozen=True)
class Strike:
    """One failed check of a reply."""

    kind: Literal["format", "content"]
    check: str
    """Which check failed: empty, role_tag, narration, repetition, length, gibberish, language, opening,
    echo, profanity, pattern, persona_leak or classifier."""
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.check}" + (f" ({self.detail})" if self.detail else "")


def _nothing(*_: object) -> None:
    return None


@dataclass
class ReplyEvents:
    """What happens while a reply is made; called on the thread that iterates the reply."""

    first_token: Callable[[], None] = _nothing
    """The reply's first text is ready: the model's first token, or the answer from memory."""
    strike: Callable[[Strike, bool], None] = _nothing
    """A check failed; the flag says whether part of the reply had already been released."""
    gave_up: Callable[[], None] = _nothing
    """The last attempt failed too: the turn is given up."""
    prompted: Callable[[int, float], None] = _nothing
    """The prompt is built: its size in tokens (as the model counts them, 0 when it was not counted) and
    the milliseconds the memory took to recall what goes in it."""


class Replier(Protocol):
    """The reply to a transcript as checked sentences (see :mod:`machine.reply`)."""

    def sentences(
        self,
        transcript: str,
        cancel: threading.Event,
        events: ReplyEvents | None = None,
        speaker: str | None = None,
    ) -> Generator[str, None, None]:
        """Yield the checked reply piece by piece; closing the generator stops generation."""
        ...

    def remember(self, question: str, answer: str, speaker: str | None = None) -> None:
        """Keep the exchange once the reply has been spoken."""
        ...

    def warm_up(self) -> None:
        """Pay the model's first-call costs now."""
        ...


@dataclass(frozen=True)
class Spoken:
    """What a reply came to: the sentences that started playing, and how the audio fared."""

    sentences: list[str]
    playback: PlaybackReport


class PreparedSpeech(Protocol):
    """A reply being synthesised ahead of playback: sentences are added by the thread that makes them
    (the reply's), synthesised on a thread of their own, and played by `play` (or closed unplayed)."""

    def add(self, sentence: str) -> bool:
        """Queue a sentence (waits while enough are queued); False when nothing more will be spoken
        (cancelled or closed): stop making sentences."""
        ...

    def finish(self) -> None:
        """No more sentences."""
        ...

    def play(
        self,
        cancel: threading.Event,
        on_first_audio: Callable[[], None],
        on_sentence: Callable[[str, float], None],
    ) -> Spoken:
        """Play what is synthesised until the sentences run out or `cancel` is set."""
        ...

    def close(self) -> None:
        """Stop synthesising (a reply that will not be played)."""
        ...


class Voice(Protocol):
    """Speaking (see :mod:`machine.speak`)."""

    def prepare(self, cancel: threading.Event) -> PreparedSpeech:
        """Start a reply's synthesis: sentences are added as they come."""
        ...

    def warm_up(self) -> None:
        """Pay the voice's first-call costs now."""
        ...

    def rest(self) -> None:
        """A turn is over: give back what the voice kept for the next reply."""
        ...


@dataclass(frozen=True, eq=False)
class Frame:
    """One picture of what the bot watches: RGB pixels (height x width x 3, uint8) and the monotonic time
    it was grabbed. Frames live in memory only: never written to disk or logs (`repr` leaves the pixels
    out)."""

    pixels: npt.NDArray[np.uint8] = field(repr=False)
    taken_at: float

    @property
    def size(self) -> tuple[int, int]:
        """Width and height in pixels."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


@dataclass(frozen=True)
class TextLine:
    """One line of text read from a picture, with its box (left, top, right, bottom, in pixels of that
    picture) and the reader's confidence in [0, 1]."""

    text: str
    box: tuple[int, int, int, int]
    score: float


class TextReader(Protocol):
    """Reads the text lines in a picture (OCR)."""

    def read(self, pixels: npt.NDArray[np.uint8]) -> list[TextLine]:
        """The lines of text in `pixels` (RGB, height x width x 3), top to bottom."""
        ...


@dataclass(frozen=True)
class ChatboxMessage:
    """A message a player typed, read from their chatbox bubble once its text stopped changing."""

    text: str
    name: str | None
    """The display name on the nameplate under the bubble (None: none readable)."""
    seen_at: float
    """Monotonic time the message's text was first read."""
    settled_at: float
    """Monotonic time it was read unchanged long enough to be answered."""


class Sight(Protocol):
    """What the bot sees now: who is around (nameplates) and its latest view."""

    def present(self) -> list[str]:
        """Display names read from nameplates recently, most recently seen first."""
        ...

    def latest(self) -> Frame | None:
        """The latest frame grabbed (None: nothing seen yet)."""
        ...

    def snapshot(self, max_side: int) -> bytes | None:
        """The latest frame as a JPEG at most `max_side` pixels a side, in memory (None: nothing seen)."""
        ...
