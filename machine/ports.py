"""The small interfaces that keep backends swappable, and the frozen values that cross them.

Vendor libraries are imported only by the backend modules that implement these protocols; the
composition root (:mod:`machine.wiring`) picks the backends from the settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
"""Every audio signal inside the runtime is 16 kHz mono float32 in [-1, 1]."""

CHUNK_SAMPLES = 512
"""The processing worker consumes fixed chunks of 512 samples (32 ms)."""

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
    """Who asked (see :mod:`machine.listen.speakers`), when the bot tells speakers apart."""


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
    """Speech → a unit vector standing for the voice (see :mod:`machine.listen.voice_encoder`)."""

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
