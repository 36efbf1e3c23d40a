"""Deciding when someone starts and stops talking, chunk by chunk.

A chunk is *voiced* when silero-vad's probability and the chunk's level (dBFS) both clear their
thresholds; the level must also stand out from a running noise-floor estimate. Speech starts after
`start_chunks` voiced chunks in a row. Before speech starts only a bounded pre-roll is kept, so silence
is dropped as it arrives.

The end of a turn is found in two steps. After a short pause (`pause_ms` of unvoiced chunks) the speech
so far is handed on early (:class:`Paused`), so transcribing and thinking can start while the turn may
still go on. With the next chunk the turn-end model, when there is one (:mod:`machine.backends.smart_turn`),
hears how the speech ended, as a probability: *complete* (at least `turn_threshold`) ends the turn once
`end_gap_ms` of silence has passed, or `sure_gap_ms` when the model is sure (at least `sure_threshold`)
(a hesitation the model took for an ending is over by then, and the early work is ready); otherwise the
turn ends after `max_silence_ms` (`end_silence_ms` without a model) (:class:`Ended`). A speaker who goes on
after a pause (:class:`Resumed`, `start_chunks` voiced chunks in a row) keeps the same utterance open: the
words before and after the pause stay one utterance.

A change of speaker ends an utterance too, with or without a pause between the two (people answer each
other within a tenth of a second): where the speech goes on after a gap of at least `_CHANGE_GAP_MS`, or
every `_CHANGE_AFTER_MS` of speech without one, the voice before that point is compared with the voice
after it once `_CHANGE_AFTER_MS` of it is heard (a `VoiceChanged` callable, the crowd stage's voice
embeddings); when they differ, the speech before is handed on as its own utterance and the speech after
stays open as the next one, as a cut does.

An utterance that reaches `max_utterance_s` is cut at its last pause (or, when the speaker never paused,
at its quietest moment) and handed on; the speech after the cut stays open as the start of the next
utterance, so no word is split and nothing is dropped.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from machine.ports import (
    CHUNK_MS,
    CHUNK_SAMPLES,
    SAMPLE_RATE,
    AudioChunk,
    FloatAudio,
    Utterance,
    VoiceActivity,
)
from machine.settings import EndpointingSettings
from machine.shared.levels import SILENCE_DBFS, dbfs

log = logging.getLogger(__name__)


class NoiseFloor:
    """An estimate of the background level: it falls at once to a quieter chunk and rises slowly."""

    def __init__(self, rise_db_per_s: float, initial_db: float) -> None:
        self._rise_per_chunk = rise_db_per_s * CHUNK_MS / 1000
        self.db = initial_db

    def update(self, level_db: float) -> float:
        """Take one chunk's level; returns the new floor."""
        self.db = min(level_db, self.db + self._rise_per_chunk)
        return self.db


def _chunks_for(ms: float) -> int:
    return math.ceil(ms / CHUNK_MS)


_CUT_SEARCH_MS = 5000
"""At the maximum length, a pause to cut at is looked for in this much of the most recent speech."""
_PAUSE_MS = 96
_TAIL_MS = 200


@dataclass(frozen=True)
class Paused:
    """The speaker paused and the turn may go on: the speech so far, handed on early."""

    utterance: Utterance


@dataclass(frozen=True)
class Resumed:
    """The speaker went on after a :class:`Paused`: that early utterance is void, the speech stays open."""


@dataclass(frozen=True)
class Ended:
    """The turn ended. `after_pause`: a :class:`Paused` came first and the speaker did not go on since,
    so this is the same speech (with the silence after it)."""

    utterance: Utterance
    after_pause: bool = False


EndpointEvent = Paused | Resumed | Ended
TurnEnd = Callable[[FloatAudio], float]
"""The turn-end model: the probability that the speech so far is a finished turn."""

VoiceChanged = Callable[[FloatAudio, FloatAudio], bool]
"""Whether the speech after a point (the second argument) is another speaker's than the speech before it."""

_CHANGE_GAP_MS = 64
"""A gap this long in the speech is where a new speaker may have started."""
_CHANGE_BEFORE_MS = 1600
"""At most this much speech before the point is compared..."""
_CHANGE_AFTER_MS = 1000
"""...with this much after it (also: with no gap, a point is taken every this often)."""
_CHANGE_MIN_VOICED_MS = 512
"""Less voiced speech than this on either side says too little about the voice to compare (only voiced
chunks are compared: a side that is mostly silence, at the end of the speech, sounds like no one)."""


class Endpointer:
    """Turns a stream of fixed chunks into utterances: paused, resumed, ended."""

    def __init__(
        self,
        vad: VoiceActivity,
        settings: EndpointingSettings,
        turn_end: TurnEnd | None = None,
        voice_changed: VoiceChanged | None = None,
    ) -> None:
        self._vad = vad
        self._voice_changed = voice_changed
        self._change_at: int | None = None
        """Where (a chunk index in the speech) a new speaker may have started, not yet judged."""
        self._change_after_gap = False
        self._last_point = 0
        """The chunk index of the last such point (a point is taken at least every `_CHANGE_AFTER_MS`)."""
        self._settings = settings
        self._turn_end = turn_end
        self._pre_roll_chunks = _chunks_for(settings.pre_roll_ms)
        self._pause_chunks = _chunks_for(settings.pause_ms)
        self._end_chunks = _chunks_for(
            settings.max_silence_ms if turn_end is not None else settings.end_silence_ms
        )
        self._gap_chunks = _chunks_for(settings.end_gap_ms)
        self._sure_gap_chunks = _chunks_for(
            settings.sure_gap_ms if settings.sure_gap_ms is not None else settings.end_gap_ms
        )
        self._min_chunks = _chunks_for(settings.min_utterance_ms)
        self.too_short = 0
        """How many bursts of speech ended too short to be a turn (each is logged)."""
        self._max_chunks = _chunks_for(settings.max_utterance_s * 1000)
        self._before: deque[AudioChunk] = deque(maxlen=self._pre_roll_chunks + settings.start_chunks)
        self._speech: list[AudioChunk] = []
        self._voiced: list[bool] = []
        self._levels: list[float] = []
        self._pre_roll_held = 0
        self._voiced_run = 0
        self._silent_run = 0
        self._paused = False
        self._gap: int | None = None
        """The turn-end model called the speech so far a finished turn: it ends after this many silent
        chunks (`sure_gap_ms` when the model is sure, `end_gap_ms` otherwise)."""
        self._last_voiced_index = -1
        # Start by assuming a quiet room; the estimate rises to the real background within seconds.
        self.noise_floor = NoiseFloor(
            settings.noise_floor_rise_db_per_s, settings.min_level_dbfs - settings.noise_margin_db
        )
        self.heard_sound = False
        """Whether the last chunk was louder than the noise floor by the margin (speech or not)."""
        self.last_voiced = False
        """Whether the last chunk pushed counted as speech."""

    @property
    def in_speech(self) -> bool:
        """True between the start of speech and the endpoint."""
        return bool(self._speech)

    @property
    def held_chunks(self) -> int:
        """How many chunks of audio are held right now (pre-roll plus speech)."""
        return len(self._before) + len(self._speech)

    def is_voiced(self, chunk: AudioChunk) -> bool:
        """Whether the chunk counts as speech: loud enough in absolute terms and above the noise floor,
        and silero-vad's probability above its threshold. Updates the noise floor."""
        return self._voiced_level(chunk)[0]

    def _voiced_level(self, chunk: AudioChunk) -> tuple[bool, float]:
        level = dbfs(chunk.samples)
        floor = self.noise_floor.db
        self.noise_floor.update(level)
        self.heard_sound = level >= max(self._settings.min_level_dbfs, floor + self._settings.noise_margin_db)
        if not self.heard_sound:
            return False, level
        return self._vad.probability(chunk.samples) >= self._settings.vad_threshold, level

    @property
    def paused(self) -> bool:
        """True between a :class:`Paused` and the next :class:`Resumed` or :class:`Ended`."""
        return self._paused

    def push(self, chunk: AudioChunk, masked: bool = False) -> EndpointEvent | None:
        """Feed one chunk; returns what it led to: a pause, a resumption or the end of an utterance.

        A `masked` chunk (the bot's own echo, see :mod:`machine.listen.echo_gate`) counts as silence and
        leaves the noise floor alone; its audio is still kept when it falls inside an utterance."""
        if chunk.samples.shape != (CHUNK_SAMPLES,):
            raise ValueError(
                f"the endpointer takes chunks of {CHUNK_SAMPLES} samples, got {chunk.samples.shape}"
            )
        if masked:
            voiced, level = False, SILENCE_DBFS
            self.heard_sound = False
        else:
            voiced, level = self._voiced_level(chunk)
        self.last_voiced = voiced
        if not self._speech:
            self._before.append(chunk)
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run < self._settings.start_chunks:
                return None
            self._speech = list(self._before)
            held = len(self._speech)
            self._voiced = [False] * (held - self._settings.start_chunks) + [
                True
            ] * self._settings.start_chunks
            self._levels = [SILENCE_DBFS] * held
            self._pre_roll_held = held - self._settings.start_chunks
            self._before.clear()
            self._mark_voiced()
            return None
        self._speech.append(chunk)
        self._voiced.append(voiced)
        self._levels.append(level)
        if voiced:
            self._note_change_point(gap=self._silent_run)
            self._mark_voiced()
            self._voiced_run += 1
            if self._paused and self._voiced_run >= self._settings.start_chunks:
                self._paused = False
                return Resumed()
        else:
            self._voiced_run = 0
            self._silent_run += 1
            if self._silent_run >= self._end_chunks:
                return self._ended(chunk.arrived_at)
            if self._silent_run == self._pause_chunks and not self._paused:
                return self._pause(chunk.arrived_at)
            if self._silent_run == self._pause_chunks + 1 and self._paused:
                self._gap = self._finished_gap()
            if self._gap is not None and self._silent_run >= self._gap:
                return self._ended(chunk.arrived_at)
        changed = self._speaker_changed(chunk.arrived_at)
        if changed is not None:
            return changed
        if len(self._speech) >= self._max_chunks:
            # while paused, the speech handed on early is kept whole: the turn ends here
            return self._ended(chunk.arrived_at) if self._paused else self._cut(chunk.arrived_at)
        return None

    def flush(self, now: float) -> Ended | None:
        """Close whatever speech is open (the input ended)."""
        return self._ended(now) if self._speech else None

    def warm_up(self) -> None:
        """Run the turn-end model once on a second of silence (its first run is the slow one)."""
        if self._turn_end is not None:
            self._turn_end(np.zeros(SAMPLE_RATE, dtype=np.float32))

    def reopen_with(self, earlier: FloatAudio) -> None:
        """Speech has just started: put `earlier` (speech handed on before, not answered yet) in front of
        it, so the two are one utterance."""
        if not self._speech:
            raise RuntimeError("reopen_with is for speech that has just started")
        padded = np.pad(earlier, (0, -len(earlier) % CHUNK_SAMPLES)).astype(np.float32, copy=False)
        chunks = [AudioChunk(part, self._speech[0].arrived_at) for part in padded.reshape(-1, CHUNK_SAMPLES)]
        self._speech = chunks + self._speech
        self._voiced = [True] * len(chunks) + self._voiced
        self._levels = [dbfs(chunk.samples) for chunk in chunks] + self._levels
        self._pre_roll_held = 0  # what came before is speech now, not pre-roll
        self._last_voiced_index += len(chunks)

    def _pause(self, now: float) -> EndpointEvent | None:
        """A short pause: what was said is handed on at once; the turn-end model's verdict on it follows
        with the next chunk (so transcribing starts while the model listens)."""
        if self._spoken_chunks() < self._min_chunks:
            return None  # too short to be a turn yet: wait for more, or for the end
        self._paused = True
        return Paused(self._utterance(now))

    def _finished_gap(self) -> int | None:
        """The silence (in chunks) after which the turn ends, graded by how sure the turn-end model is that
        it is finished; None when it is unfinished (it ends after `max_silence_ms`)."""
        if self._turn_end is None:
            return None
        try:
            probability = self._turn_end(np.concatenate([c.samples for c in self._speech]))
        except Exception:
            log.exception("the turn-end model failed; this turn ends after a silence instead")
            return None
        if probability >= self._settings.sure_threshold:
            return self._sure_gap_chunks
        if probability >= self._settings.turn_threshold:
            return self._gap_chunks
        return None

    def _note_change_point(self, gap: int) -> None:
        """A voiced chunk: after a gap, or long after the last point, a new speaker may start here. A gap
        replaces a point taken without one and not judged yet (whose second may straddle the change)."""
        if self._voice_changed is None:
            return  # (while paused too: the speech that resumes it may be another voice's)
        here = len(self._speech) - 1
        after_gap = gap >= _chunks_for(_CHANGE_GAP_MS)
        if self._change_at is not None and (self._change_after_gap or not after_gap):
            return
        last = max(self._pre_roll_held, self._last_point)
        if after_gap or here - last >= _chunks_for(_CHANGE_AFTER_MS):
            self._change_at = here - gap // 2  # the middle of the gap
            self._change_after_gap = after_gap
            self._last_point = here

    def _speaker_changed(self, now: float) -> Ended | None:
        """Judge the point once enough speech follows it: another voice ends the utterance there."""
        at = self._change_at
        if at is None or self._voice_changed is None or self._paused:
            return None
        if len(self._speech) - at < _chunks_for(_CHANGE_AFTER_MS):
            return None
        self._change_at = None
        first = max(self._pre_roll_held, at - _chunks_for(_CHANGE_BEFORE_MS))
        before = self._voiced_samples(first, at)
        after = self._voiced_samples(at, at + _chunks_for(_CHANGE_AFTER_MS))
        if min(len(before), len(after)) < _chunks_for(_CHANGE_MIN_VOICED_MS) * CHUNK_SAMPLES:
            return None  # mostly silence on one side (the end of the speech): too little voice to compare
        try:
            changed = self._voice_changed(before, after)
        except Exception:
            log.exception("telling speakers apart failed; the utterance goes on")
            return None
        if not changed:
            return None
        log.info("another voice took over: the speech before it is an utterance of its own")
        return self._hand_on(at, now, truncated=False)

    def _voiced_samples(self, start: int, stop: int) -> FloatAudio:
        """The voiced chunks of the speech between two indices, joined."""
        span = zip(self._speech[start:stop], self._voiced[start:stop], strict=True)
        chunks = [chunk.samples for chunk, voiced in span if voiced]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)

    def reset(self) -> None:
        """Drop everything held and start afresh."""
        self._change_at = None
        self._last_point = 0
        self._before.clear()
        self._speech = []
        self._voiced = []
        self._levels = []
        self._pre_roll_held = 0
        self._voiced_run = 0
        self._silent_run = 0
        self._paused = False
        self._gap = None
        self._vad.reset()

    def _mark_voiced(self) -> None:
        self._silent_run = 0
        self._gap = None
        self._last_voiced_index = len(self._speech) - 1

    def _spoken_chunks(self) -> int:
        return self._last_voiced_index + 1 - self._pre_roll_held

    def _utterance(self, now: float) -> Utterance:
        """The open speech up to its last voiced chunk, with a little of the silence after it (it helps
        whisper end the last word), not all of it."""
        # the tail is never longer than a pause, so the speech handed on at a pause is the final one
        tail = min(
            len(self._speech), self._last_voiced_index + 1 + min(self._pause_chunks, _chunks_for(_TAIL_MS))
        )
        silence_s = (len(self._speech) - 1 - self._last_voiced_index) * CHUNK_MS / 1000
        return _utterance(self._speech[:tail], now, silence_s, truncated=False)

    def _ended(self, now: float) -> Ended | None:
        after_pause = self._paused
        spoken = self._spoken_chunks()
        utterance = self._utterance(now) if spoken >= self._min_chunks else None
        self.reset()
        if utterance is not None:
            return Ended(utterance, after_pause)
        if spoken > 0:  # not the silent rest of an utterance cut at its maximum length
            self.too_short += 1  # said in the log and counted: a "hmm" is not lost without a word
            log.info(
                "%d ms of speech, shorter than min_utterance_ms (%d): not a turn (%d so far)",
                spoken * CHUNK_MS,
                self._min_chunks * CHUNK_MS,
                self.too_short,
            )
        return None

    def _cut(self, now: float) -> Ended:
        """The maximum length is reached: hand on the speech up to a pause, keep the rest open."""
        return self._hand_on(self._cut_point(), now, truncated=True)

    def _hand_on(self, cut: int, now: float, truncated: bool) -> Ended:
        """Hand on the speech before chunk `cut`; what follows stays open as the next utterance."""
        speech, rest = self._speech[:cut], self._speech[cut:]
        voiced, levels = self._voiced[cut:], self._levels[cut:]
        before_cut = [i for i, flag in enumerate(self._voiced[:cut]) if flag]
        silence_s = (len(self._speech) - 1 - (before_cut[-1] if before_cut else 0)) * CHUNK_MS / 1000
        self._speech, self._voiced, self._levels = rest, voiced, levels
        self._pre_roll_held = 0
        later = [i for i, flag in enumerate(voiced) if flag]
        self._last_voiced_index = later[-1] if later else -1
        self._silent_run = len(rest) - 1 - self._last_voiced_index
        self._last_point = 0
        return Ended(_utterance(speech, now, silence_s, truncated=truncated))

    def _cut_point(self) -> int:
        """The middle of the latest pause in the recent speech, or else its quietest chunk."""
        spoken_from = self._pre_roll_held + self._settings.start_chunks
        search = max(spoken_from, len(self._speech) - _chunks_for(_CUT_SEARCH_MS))
        pause = _chunks_for(_PAUSE_MS)
        quiet = [not flag for flag in self._voiced]
        end = len(self._speech)
        while end > search:
            if not quiet[end - 1]:
                end -= 1
                continue
            start = end
            while start > search and quiet[start - 1]:
                start -= 1
            if end - start >= pause:
                return (start + end) // 2
            end = start
        recent = np.array(self._levels[search:])
        return search + len(recent) - int(np.argmin(recent[::-1]))  # just after the latest quietest chunk


def _utterance(speech: list[AudioChunk], now: float, silence_s: float, truncated: bool) -> Utterance:
    samples = np.concatenate([c.samples for c in speech]).astype(np.float32, copy=False)
    return Utterance(samples=samples, last_voiced_at=now - silence_s, endpoint_at=now, truncated=truncated)
