"""What the bot hears, chunk by chunk, whatever it is doing: the runtime's ears.

Every input chunk goes through the echo gate (:mod:`machine.listen.echo_gate`) and the endpointer, in every
state, so nothing a user says is dropped unheard:

- **listening**: a closed utterance starts a turn; with `speculate`, so does the speech before a pause
  (the endpointer's :class:`~machine.listen.endpointing.Paused`), handed on early while the turn may still
  go on (**pending**): the end of that turn confirms it, and a speaker who goes on voids it, and the
  words before and after the pause stay one utterance. With `speculate` a turn is not final until the bot
  starts to speak: a speaker who goes on after the end of their turn was decided (a turn-end model can
  be wrong), but before the reply is heard, voids the reply the same way (**resumed**), and what they
  said before is put in front of what they say now. Within `retract_ms` of the bot starting to answer,
  the same holds (**retracted**): the reply stops and is dropped, in both barge-in modes (not for the
  first reply of a run, while the echo path is still unknown and the bot's own voice cannot be told from
  a user's);
- **busy** (transcribing, thinking): a closed utterance is held and starts the next turn as soon as the
  bot listens again;
- **speaking**, with barge-in on: a user who talks over the bot for `barge_in_ms` (half of that window
  voiced above the echo) stops it, and what they say from their first word on becomes the next turn; a
  short utterance that ends while the bot is still talking is held for the next turn;
- **speaking**, half-duplex (barge-in off): speech heard over the bot is dropped, and the log says so;
- **off** (idle, reset): nothing is held.

The echo gate replaces a blind "deaf for a moment after speaking" tail: right after the bot stops, only
what could be its own echo is masked, so a user who starts as the bot finishes keeps their first words.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from machine.listen.echo_gate import EchoGate
from machine.listen.endpointing import Ended, Endpointer, EndpointEvent, Paused, Resumed
from machine.ports import CHUNK_MS, SAMPLE_RATE, AudioChunk, FloatAudio, Heard, Mode, Utterance

log = logging.getLogger(__name__)

_HELD_GAP = np.zeros(SAMPLE_RATE // 5, dtype=np.float32)
"""Silence put between utterances held while the bot was busy, when they are joined into one."""


_UNJUDGED_CHUNKS = math.ceil(4000 / CHUNK_MS)
"""While the echo path is being learned, up to 4 s of input wait to be judged."""


class Hearing:
    """The runtime's ears: `hear` is called from the processing worker; `set_mode` from the event loop."""

    def __init__(
        self,
        endpointer: Endpointer,
        echo_gate: EchoGate | None,
        barge_in_ms: int | None,
        max_held_s: float,
        denoiser: Callable[[FloatAudio], FloatAudio] | None = None,
        speculate: bool = False,
        retract_ms: int = 0,
    ) -> None:
        self._endpointer = endpointer
        self._speculate = speculate
        self._early_id = 0
        """The number of the last utterance handed on (early or final)."""
        self._reclaim: Utterance | None = None
        """The last utterance handed on, while the bot has not started to answer it aloud."""
        self._retract_window = math.ceil(retract_ms / CHUNK_MS)
        self._retract_left = 0
        """Chunks left, while speaking, in which the speaker going on retracts the reply."""
        self._spent = False
        """An early utterance's turn closed before the speaker's turn ended: that end is not news."""
        self._gate = echo_gate
        self._denoiser = denoiser
        self._barge_window = math.ceil(barge_in_ms / CHUNK_MS) if barge_in_ms is not None else 0
        self._recent_voice: deque[bool] = deque(maxlen=max(1, self._barge_window))
        self._max_held = int(max_held_s * SAMPLE_RATE)
        self._lock = threading.Lock()
        self._mode = Mode.OFF
        self._held: Utterance | None = None
        self._barged = False
        self._unjudged: deque[AudioChunk] = deque(maxlen=_UNJUDGED_CHUNKS)
        self.dropped_s = 0.0
        """Seconds of speech dropped so far because the bot was speaking (half-duplex)."""

    @property
    def held_s(self) -> float:
        """Seconds of speech held for the next turn."""
        held = self._held
        return held.duration_s if held is not None else 0.0

    @property
    def retract_s(self) -> float:
        """How long after the bot starts to answer the speaker going on still retracts the reply."""
        return self._retract_window * CHUNK_MS / 1000

    @property
    def listening(self) -> bool:
        """Whether nothing heard is waiting for the bot: no utterance handed on and not yet taken up, and
        none pending."""
        return self._mode is Mode.LISTENING

    @property
    def heard_sound(self) -> bool:
        """Whether the last chunk was louder than the background (speech or not)."""
        return self._endpointer.heard_sound

    def set_mode(self, mode: Mode, taken: int | None = None) -> Utterance | None:
        """Switch mode (not to PENDING: hearing enters that itself); entering LISTENING hands back an
        utterance held meanwhile, to be answered now.

        `taken`: with LISTENING, the number (`Heard.early_id`) of the last utterance the caller took up;
        when one handed on after it is still on its way, or an early one is pending, nothing changes."""
        with self._lock:
            if mode is Mode.LISTENING and (
                self._mode is Mode.PENDING
                or (self._mode is Mode.BUSY and taken is not None and self._early_id > taken)
            ):
                return None
            if mode is Mode.SPEAKING and self._retractable():
                self._retract_left = self._retract_window  # final once the window has passed
            elif mode is not Mode.BUSY:
                self._reclaim = None  # the turn ended, or the bot answers aloud: it is final
            if self._mode is Mode.SPEAKING:
                if self._gate is not None and self._gate.path.learned:
                    self._judge_unjudged()
                self._left_speaking()
            self._mode = mode
            if mode is Mode.SPEAKING:
                self._barged = False
                self._recent_voice.clear()
            if mode is Mode.OFF:
                self._spent = False
                self._unjudged.clear()
                self._drop_held("the turn was reset")
                self._endpointer.reset()
            if mode is Mode.LISTENING and self._held is not None:
                held, self._held = self._held, None
                self._mode = Mode.BUSY  # the held utterance is this turn's
                return held
            return None

    def _retractable(self) -> bool:
        """A reply about to be spoken can be retracted: there is a window, an utterance to join the speech
        to, and the bot's own voice can be told from a user's (the echo path is known, or there is none)."""
        return (
            self._retract_window > 0
            and self._reclaim is not None
            and (self._gate is None or self._gate.path.learned)
        )

    def warm_up(self) -> None:
        """Run the turn-end model once on silence, so its first real verdict is not slowed by loading."""
        self._endpointer.warm_up()

    def drop_early(self, early_id: int) -> None:
        """The turn of early utterance `early_id` closed before the speaker's turn ended (no words in it,
        no reply): if it is still pending, hearing listens again, and the end of that speech, when it
        comes, is not answered twice."""
        with self._lock:
            if self._mode is Mode.PENDING and early_id == self._early_id:
                self._mode = Mode.LISTENING
                self._spent = True

    def hear(self, chunk: AudioChunk) -> Heard | None:
        """Take one input chunk; returns what it led to, if anything."""
        with self._lock:
            if self._mode is Mode.OFF:
                return None
            if self._denoiser is not None:
                chunk = AudioChunk(self._denoiser(chunk.samples), chunk.arrived_at)
            if self._gate is None:
                return self._judged(chunk, new_voice=True)
            self._gate.observe(chunk)
            if not self._gate.path.learned and (
                self._mode is Mode.SPEAKING or self._gate.echo_possible(chunk)
            ):
                # The echo path is not known yet (the first reply of a run): the chunk is judged once it
                # is (at most the longest echo delay after the bot stops), so a user who talks over the
                # bot's first words, or starts as it finishes, is not masked as its echo.
                if len(self._unjudged) == self._unjudged.maxlen:
                    self._judge_oldest()
                self._unjudged.append(chunk)
                return None
            heard = self._judge_unjudged()
            return self._judged(chunk, self._gate.judge(chunk)) or heard

    def _judge_oldest(self) -> Heard | None:
        assert self._gate is not None
        oldest = self._unjudged.popleft()
        return self._judged(oldest, self._gate.judge(oldest))

    def _judge_unjudged(self) -> Heard | None:
        heard = None
        while self._unjudged:
            heard = self._judge_oldest() or heard
        return heard

    def _judged(self, chunk: AudioChunk, new_voice: bool) -> Heard | None:
        was_in_speech = self._endpointer.in_speech
        event = self._endpointer.push(chunk, masked=not new_voice)
        if self._mode is Mode.SPEAKING and self._reclaim is not None:
            self._retract_left -= 1
            if self._retract_left < 0:
                self._reclaim = None  # the window passed: the reply stands
        if self._reclaim is not None and not was_in_speech and self._endpointer.in_speech:
            return self._resumed_late(self._reclaim)
        if self._mode is Mode.SPEAKING:
            return self._while_speaking(event.utterance if isinstance(event, Ended) else None)
        if isinstance(event, Paused | Resumed):
            return self._early(event)
        if event is None:
            return None
        utterance = event.utterance
        if utterance.truncated:
            log.info(
                "an utterance reached machine.endpointing.max_utterance_s; it was cut at a pause and "
                "what follows is the next utterance"
            )
        if self._mode is Mode.PENDING:
            self._mode = Mode.BUSY
            self._reclaim = utterance
            return Heard(utterance=utterance, confirmed=True, early_id=self._early_id)
        if self._spent and event.after_pause:
            self._spent = False
            return None
        self._spent = False
        if self._mode is Mode.LISTENING:
            self._mode = Mode.BUSY  # one utterance per turn: the next is held until the bot listens
            self._early_id += 1
            self._reclaim = utterance if self._speculate else None
            return Heard(utterance=utterance, early_id=self._early_id)
        self._hold(utterance)
        return None

    def _resumed_late(self, earlier: Utterance) -> Heard:
        """Speech started after a turn was handed on, before the bot answered it aloud or just after it
        started to: one utterance."""
        self._reclaim = None
        self._endpointer.reopen_with(earlier.samples)
        if self._mode is Mode.SPEAKING:
            log.info("the speaker went on just after the reply started: it is retracted, the speech joined")
        else:
            log.info("the speaker went on before the reply was heard: it is dropped, the speech joined")
        self._mode = Mode.LISTENING
        return Heard(resumed=True, early_id=self._early_id)

    def _early(self, event: EndpointEvent) -> Heard | None:
        """A pause (hand the speech so far on, when listening) or the speaker going on after one."""
        if isinstance(event, Resumed):
            self._spent = False
            if self._mode is Mode.PENDING:
                self._mode = Mode.LISTENING
                return Heard(resumed=True, early_id=self._early_id)
            return None
        assert isinstance(event, Paused)
        if self._speculate and self._mode is Mode.LISTENING:
            self._mode = Mode.PENDING
            self._early_id += 1
            return Heard(utterance=event.utterance, final=False, early_id=self._early_id)
        return None

    def _while_speaking(self, utterance: Utterance | None) -> Heard | None:
        voiced = self._endpointer.in_speech and self._endpointer.last_voiced
        if self._barge_window:
            self._recent_voice.append(voiced)
            if utterance is not None:
                self._hold(utterance)
            if (
                not self._barged
                and self._endpointer.in_speech
                and len(self._recent_voice) == self._barge_window
                and sum(self._recent_voice) * 2 >= self._barge_window
            ):
                self._barged = True
                log.info("barge-in: a user talked over the bot; it stops and listens")
                return Heard(barge_in=True)
            return None
        if utterance is not None:
            self._drop(utterance.duration_s)
        return None

    def _left_speaking(self) -> None:
        if self._barge_window:
            return  # what the user is saying goes on into the next turn
        if self._endpointer.in_speech:
            self._drop(self._endpointer.held_chunks * CHUNK_MS / 1000)
            self._endpointer.reset()

    def _drop(self, seconds: float) -> None:
        self.dropped_s += seconds
        log.warning(
            "dropped %.1f s of speech heard while the bot was speaking (half-duplex: turn on "
            "machine.audio.barge_in to let a user talk over the bot)",
            seconds,
        )

    def _hold(self, utterance: Utterance) -> None:
        if self._held is None:
            self._held = utterance
        else:
            joined = np.concatenate([self._held.samples, _HELD_GAP, utterance.samples])
            if len(joined) > self._max_held:
                log.warning(
                    "more than %.0f s of speech was heard while the bot was busy; the oldest is dropped",
                    self._max_held / SAMPLE_RATE,
                )
                joined = joined[-self._max_held :]
            self._held = replace(
                utterance, samples=joined, truncated=self._held.truncated or utterance.truncated
            )
        log.info("heard %.1f s of speech while busy; it is answered next", utterance.duration_s)

    def _drop_held(self, why: str) -> None:
        if self._held is not None:
            log.warning("dropped %.1f s of speech held for the next turn: %s", self._held.duration_s, why)
            self._held = None
