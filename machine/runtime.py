"""The conversation runtime: audio in, turns driven by the state machine, speech out.

The stages it schedules, each seen through a port of :mod:`machine.ports` (the composition root,
:mod:`machine.app`, builds them): ears (hearing) → transcriber → whom to answer → replier → voice.

Threads: the source (capture) thread only hands fixed chunks to a bounded queue; one processing worker
feeds them to the bot's ears, in every state, so nothing a user says is dropped unheard; models run in
turn jobs. Every job reports back as a typed event (:mod:`machine.events`) through one event queue, and
the loop in :meth:`Runtime.run` is the only place that fires the state machine. A turn's reply is made on
its think job (the model's stream, the checks, the strikes), which adds the sentences to the voice; the
voice's synthesis thread only synthesises.

Typed turns: a chatbox message read on screen (:mod:`machine.vision`) is handed to :meth:`Runtime.typed`
and starts a turn as an utterance does, when the bot is listening (one that arrives while it is busy waits
its turn). Its words are read, not heard: "transcribing" only attributes it to the name on its nameplate,
and everything after (reply policy, memory, strikes, speech, captions) is the same.

Early work: when the speaker pauses and their turn may go on, the speech so far starts a turn at once
(transcribing, thinking), and its reply waits in `ready` until the turn is confirmed. If the speaker goes
on, that turn is dropped unseen: cancelled before any audio, never spoken, remembered, captioned or
reported; the words before and after the pause become one utterance.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from machine.events import (
    BargeIn,
    ReplyStarted,
    Reset,
    Spoken,
    Start,
    Stop,
    Transcribed,
    TurnConfirmed,
    TurnEvent,
    Typed,
    UserResumed,
    UtteranceEnded,
)
from machine.fsm import TurnMachine, TurnState
from machine.ports import (
    SAMPLE_RATE,
    Attribution,
    AudioChunk,
    AudioSource,
    Captions,
    ChatboxMessage,
    Ears,
    Heard,
    Mode,
    PreparedSpeech,
    Replier,
    ReplyEvents,
    Strike,
    Transcriber,
    Transcript,
    Voice,
    WhomToAnswer,
)
from machine.shared.sentence_feed import feed
from machine.turn_metrics import TurnRecord

log = logging.getLogger(__name__)


EVENT_QUEUE_SIZE = 256
"""Events waiting for the loop (a handful per turn; the loop never blocks long): past it, one is dropped
and logged."""
RECORDS_KEPT = 1000
"""Finished turns kept in :attr:`Runtime.records` (each is also reported to `on_turn` as it ends)."""
TYPED_WAITING = 8
"""Chatbox messages kept while the bot is busy (the oldest is dropped past it)."""
TYPED_STALE_S = 60.0
"""A chatbox message still waiting this long after it was read is no longer answered."""
_FORGET_WAIT_S = 10.0
_CLOSE_WAIT_S = 1.0


@dataclass
class _Turn:
    key: int
    """Tells this turn's events from those of turns before it (a dropped turn's number is reused)."""
    record: TurnRecord
    early_id: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    pending: PreparedSpeech | None = None
    """The reply, synthesised from its first sentence on, waiting to be played."""
    speaking: bool = False
    jobs: list[Future[None]] = field(default_factory=list)
    prompt_speaker: str | None = None
    """Whom the prompt says the bot is talking with (None: one unnamed voice, no names needed)."""
    confirmed: bool = False
    """An early turn: the speaker's turn ended after its pause, so its work stands."""
    unlearned: tuple[np.ndarray | None, str, float] | None = None
    """An early turn's voice, transcript and time, attributed without being learned until it stands."""


class _FirmCaptions:
    """A reply's captions, held back while the reply can still be retracted (`hold_s` after it starts):
    a retracted reply is never shown. Released when the window passes or the reply ends."""

    def __init__(self, captions: Captions, cancel: threading.Event, hold_s: float) -> None:
        self._captions = captions
        self._cancel = cancel
        self._lock = threading.Lock()
        self._held: list[tuple[str, float, float]] | None = [] if hold_s > 0 else None
        if hold_s > 0:
            timer = threading.Timer(hold_s, self.release)
            timer.daemon = True
            timer.start()

    def saying(self, sentence: str, duration_s: float) -> None:
        with self._lock:
            if self._held is not None:
                self._held.append((sentence, duration_s, time.monotonic()))
                return
        if not self._cancel.is_set():
            self._captions.saying(sentence, duration_s)

    def release(self) -> None:
        """Show what was held (unless the reply was cancelled meanwhile), the time already spoken taken off
        each sentence's duration; from now on sentences are shown as they start."""
        with self._lock:
            held, self._held = self._held, None
        if self._cancel.is_set():
            return
        for sentence, duration_s, started in held or []:
            self._captions.saying(sentence, max(0.0, duration_s - (time.monotonic() - started)))


class Runtime:
    """Runs turns over an audio source until it ends; reports each finished turn to `on_turn`."""

    def __init__(
        self,
        hearing: Ears,
        transcriber: Transcriber,
        thinker: Replier,
        speaker: Voice,
        on_turn: Callable[[TurnRecord], None],
        chunk_queue_size: int = 256,
        on_activity: Callable[[], None] = lambda: None,
        captions: Captions | None = None,
        warm_up: bool = False,
        crowd: WhomToAnswer | None = None,
    ) -> None:
        self._warm_up = warm_up
        self._crowd = crowd
        self._crowd_lock = threading.Lock()
        """Orders an early turn's attribution (a turn job) and its confirmation (the loop)."""
        self._hearing = hearing
        self._transcriber = transcriber
        self._thinker = thinker
        self._speaker = speaker
        self._on_turn = on_turn
        self._on_activity = on_activity
        self._captions = captions
        self._last_activity = 0.0
        self._chunks: queue.Queue[AudioChunk] = queue.Queue(maxsize=chunk_queue_size)
        self._events: queue.SimpleQueue[TurnEvent] = queue.SimpleQueue()
        """Reentrant `put`: signal handlers post here too (a `queue.Queue` could deadlock on its own lock)."""
        self._listening = threading.Event()
        self._stopping = threading.Event()
        self._jobs = ThreadPoolExecutor(max_workers=5, thread_name_prefix="turn-job")
        self._turn: _Turn | None = None
        self._turn_keys = itertools.count(1)
        self._taken = 0
        """The number of the last utterance from hearing that started a turn."""
        self._turn_count = 0
        self.dropped_early = 0
        """Turns started early at a pause and dropped because the speaker went on."""
        self.retracted = 0
        """Of those, replies already started and retracted (see `retract_ms`)."""
        self._turn_states: list[str] = [TurnState.IDLE.value]
        self._typed: deque[Typed] = deque(maxlen=TYPED_WAITING)
        """Chatbox messages that arrived while the bot was busy, oldest first (only the loop touches it)."""
        self._spoken_meanwhile: UtteranceEnded | None = None
        """Speech that ended just as a typed turn started (only the loop touches it): the next turn."""
        self.dropped_chunks = 0
        self.records: deque[TurnRecord] = deque(maxlen=RECORDS_KEPT)
        """The most recent finished turns."""
        self.machine = TurnMachine(
            on_enter={
                TurnState.IDLE: self._entered_idle,
                TurnState.LISTENING: self._entered_listening,
                TurnState.TRANSCRIBING: self._entered_transcribing,
                TurnState.THINKING: self._entered_thinking,
                TurnState.SPEAKING: self._entered_speaking,
                TurnState.RESET: self._entered_reset,
            },
            on_any_enter=lambda state: self._turn_states.append(state.value),
            on_turn_over=self._turn_over,
        )

    # --- audio side -------------------------------------------------------------------------------

    def deliver(self, chunk: AudioChunk) -> None:
        """Called by the capture thread: never blocks; a full queue drops the chunk and counts it."""
        try:
            self._chunks.put_nowait(chunk)
        except queue.Full:
            self.dropped_chunks += 1

    def working(self) -> bool:
        """Whether a reply is being worked out now (transcribing, thinking, or ready and waiting): from
        any thread; the eyes wait while it is."""
        return self.machine.current in (TurnState.TRANSCRIBING, TurnState.THINKING, TurnState.READY)

    def typed(self, message: ChatboxMessage) -> None:
        """A chatbox message read on screen (from any thread): it is answered as a turn of its own."""
        self._post(Typed(message=message))

    def wait_for_turn(self, timeout: float) -> bool:
        """Block until every delivered chunk is processed and the bot is listening again (False on timeout
        or when the runtime stops)."""
        deadline = time.monotonic() + timeout
        while self._chunks.unfinished_tasks:  # what was delivered may still start a turn
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        while not self._listening.wait(max(0.0, min(0.05, deadline - time.monotonic()))):
            if self._stopping.is_set() or time.monotonic() >= deadline:
                return False
        return True

    def _process_chunks(self) -> None:
        while not self._stopping.is_set():
            try:
                chunk = self._chunks.get(timeout=0.05)
            except queue.Empty:
                continue
            try:
                heard = self._hearing.hear(chunk)
                if self._hearing.heard_sound:
                    self._activity(chunk.arrived_at)
                if heard is not None:
                    self._heard(heard)
            except Exception:
                log.exception("audio processing failed; the turn is reset")
                self._listening.clear()
                self._post(Reset())
            finally:
                self._chunks.task_done()

    def _heard(self, heard: Heard) -> None:
        turn = self._turn
        if heard.confirmed:
            self._post(TurnConfirmed(utterance=heard.utterance, early_id=heard.early_id))
        elif heard.resumed:
            self._post(UserResumed(early_id=heard.early_id))
        elif heard.utterance is not None:
            self._listening.clear()
            self._post(UtteranceEnded(utterance=heard.utterance, final=heard.final, early_id=heard.early_id))
        elif heard.barge_in:
            self._post(BargeIn(turn=turn.key if turn else 0))

    def _activity(self, now: float) -> None:
        """Tell the session something happened (noise heard, the bot speaking), at most once a second."""
        if now - self._last_activity >= 1.0:
            self._last_activity = now
            self._on_activity()

    # --- the loop -----------------------------------------------------------------------------------

    def run(self, source: AudioSource, on_listening: Callable[[], None] = lambda: None) -> list[TurnRecord]:
        """Run until the source ends (then finish the turn in flight) or `stop()` is called; `on_listening`
        is called once the models are warm and the bot listens."""
        failure: list[BaseException] = []

        def feed() -> None:
            try:
                source.run(self.deliver, self.wait_for_turn, self._stopping)
            except BaseException as exc:
                failure.append(exc)
                self._post(Reset())
            self._post(Stop())

        if self._warm_up:
            self.warm_up()
        worker = threading.Thread(target=self._process_chunks, name="audio-processing", daemon=True)
        feeder = threading.Thread(target=feed, name="audio-source", daemon=True)
        worker.start()
        self.machine.fire(Start())
        feeder.start()
        on_listening()
        try:
            while True:
                try:
                    event = self._events.get(timeout=0.2)  # a timeout keeps Ctrl-C responsive
                except queue.Empty:
                    self._typed_when_free()
                    continue
                if self._stale(event):
                    log.debug("dropping %s from a finished turn", event.trigger.value)
                    continue
                if self._waits(event):
                    continue
                if isinstance(event, Stop):
                    self._stopping.set()
                    if self.machine.current is not TurnState.IDLE:
                        self.machine.fire(event)  # the table abandons a turn in flight
                    break
                self.machine.fire(event)
        finally:
            self._stopping.set()
            if self._turn is not None:
                self._turn.cancel.set()
            feeder.join(timeout=5)
            worker.join(timeout=5)
            self._jobs.shutdown(wait=True, cancel_futures=True)
            if self._captions is not None:
                self._captions.close()
        if failure:
            raise failure[0]
        return list(self.records)

    def _stale(self, event: TurnEvent) -> bool:
        """An event about a turn that is no longer in flight."""
        turn = self._turn
        if event.turn:
            return turn is None or event.turn != turn.key
        if isinstance(event, TurnConfirmed):
            return turn is None or turn.early_id != event.early_id or turn.speaking
        if isinstance(event, UserResumed):  # also while speaking: hearing retracts only within its window
            return turn is None or turn.early_id != event.early_id
        return False

    def warm_up(self) -> None:
        """Run every model once before listening (about 2 s on two cores), so the first turn of a process
        is as fast as the others: whisper on a second of silence, the turn-end model, the voice encoder,
        one token of the chat model (which also keeps the persona's prompt cache), and a synthesised word.
        The output device still starts with the first reply: started here, it kept running silence until
        then, and over a 1 s loopback the echo gate no longer masked the reply's echo."""
        started = time.monotonic()
        self._hearing.warm_up()
        self._transcriber.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32))
        if self._crowd is not None:
            self._crowd.warm_up()
        self._thinker.warm_up()
        self._speaker.warm_up()
        log.info("models warmed up in %.1f s", time.monotonic() - started)

    def stop(self) -> None:
        """Ask the loop to end (from any thread, a signal handler included)."""
        self._post(Stop())

    def reset(self) -> None:
        """Abandon the turn in flight and go back to idle (from any thread)."""
        self._post(Reset())

    def forget(self, forget_memory: Callable[[], None]) -> None:
        """End the conversation now (from any thread, a signal handler included): the turn in flight is
        reset, and once its jobs have finished (so nothing more can be remembered) `forget_memory` runs
        and the turns kept in RAM are dropped."""
        self._post(Reset(forget=forget_memory))

    def _post(self, event: TurnEvent) -> None:
        """Hand an event to the loop; safe in a signal handler (`SimpleQueue.put` is reentrant)."""
        if self._events.qsize() >= EVENT_QUEUE_SIZE and not isinstance(event, Stop | Reset):
            log.error("the event queue is full (the loop is stuck?); %s is dropped", event.trigger.value)
            return
        self._events.put(event)

    def _job(self, turn: _Turn, work: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                work()
            except Exception:
                log.exception("turn %d failed", turn.record.turn)
                turn.record.outcome = "failed"
                self._post(Reset(turn=turn.key))

        turn.jobs.append(self._jobs.submit(guarded))

    # --- state callbacks: they only start or cancel work --------------------------------------------

    def _entered_idle(self, event: TurnEvent) -> None:
        self._listening.clear()
        self._hearing.set_mode(Mode.OFF)
        if self._captions is not None:
            self._captions.idle()
        self._close_turn("reset")
        if not self._stopping.is_set():
            self._post(Start())

    def _entered_listening(self, event: TurnEvent) -> None:
        if self._captions is not None:
            self._captions.idle()
        previous = self.machine.previous
        outcome = {TurnState.TRANSCRIBING: "no_words", TurnState.THINKING: "no_reply"}.get(
            previous, "replied"
        )
        if isinstance(event, BargeIn):
            outcome = "interrupted"
        elif isinstance(event, Transcribed) and not event.addressed:
            outcome = "not_addressed"
        elif isinstance(event, UserResumed):
            outcome = "resumed"
        elif previous is TurnState.SPEAKING:
            self._activity(time.monotonic())
        self._close_turn(outcome)
        held = self._hearing.set_mode(Mode.LISTENING, taken=self._taken)
        spoken, self._spoken_meanwhile = self._spoken_meanwhile, None
        if spoken is not None:
            self._post(spoken)  # it ended as a typed turn started: the next turn
            if held is not None:  # and what was said during that turn, after it
                self._spoken_meanwhile = UtteranceEnded(utterance=held)
        elif held is not None:
            self._post(UtteranceEnded(utterance=held))  # heard while busy: this is the next turn
        elif not self._typed_when_free() and self._hearing.listening:
            # nothing typed while busy, and no utterance heard meanwhile on its way to the loop
            self._listening.set()

    def _waits(self, event: TurnEvent) -> bool:
        """Whether `event` starts a turn that must wait for the one in flight (kept, posted again once the
        bot listens). A chatbox message starts one only while the bot listens and hearing has nothing on its
        way (`Ears.listening`); speech that ended just as a typed turn started anyway (its utterance already
        on its way to the loop) is answered after that turn."""
        if isinstance(event, Typed):
            if self.machine.current is TurnState.LISTENING and self._hearing.listening:
                return False
            self._typed.append(event)
            return True
        turn = self._turn
        if isinstance(event, UtteranceEnded) and event.final and turn is not None and turn.record.typed:
            self._spoken_meanwhile = event
            return True
        return False

    def _typed_when_free(self) -> bool:
        """Post the oldest chatbox message kept while the bot was busy, if it is free now: in `listening`,
        with nothing on its way from hearing (on entering `listening`, and whenever the loop has nothing
        to do: a message kept while speech was on its way that then came to nothing). Whether it did."""
        if not (self._typed and self.machine.current is TurnState.LISTENING and self._hearing.listening):
            return False
        waiting = self._next_typed()
        if waiting is not None:
            self._post(waiting)
        return waiting is not None

    def _next_typed(self) -> Typed | None:
        """The oldest chatbox message waiting that is not stale."""
        while self._typed:
            waiting = self._typed.popleft()
            if time.monotonic() - waiting.message.settled_at < TYPED_STALE_S:
                return waiting
            log.info("a chatbox message waited too long and is not answered")
        return None

    def _entered_transcribing(self, event: TurnEvent) -> None:
        if isinstance(event, Typed):
            self._start_typed_turn(event.message)
            return
        assert isinstance(event, UtteranceEnded), "the table enters transcribing on an utterance or a message"
        utterance = event.utterance
        self._turn_count += 1
        record = TurnRecord(
            self._turn_count,
            utterance.last_voiced_at,
            utterance.endpoint_at,
            heard=time.monotonic(),
            early=not event.final,
        )
        turn = _Turn(next(self._turn_keys), record, early_id=event.early_id)
        self._turn = turn
        self._taken = max(self._taken, turn.early_id)
        if not record.early:
            self._hearing.set_mode(Mode.BUSY)  # what is said from now on is held for the next turn

        def transcribe() -> None:
            crowd = self._crowd
            # the voice is embedded beside the transcription, so telling speakers apart adds little
            voice = self._jobs.submit(crowd.voice, utterance.samples) if crowd is not None else None
            transcript = self._transcriber.transcribe(utterance.samples)
            turn.record.transcript_ready = time.monotonic()
            addressed = True
            if crowd is not None and voice is not None and transcript.has_words:
                attribution = self._attribute(crowd, turn, voice.result(), transcript.text)
                turn.record.speaker, addressed = attribution.speaker, attribution.addressed
                turn.prompt_speaker = attribution.speaker if attribution.crowd else None
                turn.record.identify_ms = round((time.monotonic() - turn.record.transcript_ready) * 1000, 1)
            self._post(Transcribed(turn=turn.key, transcript=transcript, addressed=addressed))

        self._job(turn, transcribe)

    def _start_typed_turn(self, message: ChatboxMessage) -> None:
        """A turn from a chatbox message: no transcription, only who typed it and whether it is answered."""
        self._listening.clear()
        self._hearing.set_mode(Mode.BUSY)  # what is said meanwhile is held for the next turn
        self._turn_count += 1
        now = time.monotonic()
        record = TurnRecord(self._turn_count, message.seen_at, message.settled_at, heard=now, typed=True)
        turn = _Turn(next(self._turn_keys), record)
        self._turn = turn

        def attribute() -> None:
            transcript = Transcript(message.text)
            turn.record.transcript_ready = time.monotonic()
            addressed = True
            if self._crowd is not None and transcript.has_words:
                attribution = self._crowd.typed(message.name, message.text, turn.record.transcript_ready)
                turn.record.speaker, addressed = attribution.speaker, attribution.addressed
                turn.prompt_speaker = attribution.speaker if attribution.crowd else None
            self._post(Transcribed(turn=turn.key, transcript=transcript, addressed=addressed))

        self._job(turn, attribute)

    def _entered_thinking(self, event: TurnEvent) -> None:
        assert isinstance(event, Transcribed), "the table enters thinking on a transcript"
        turn = self._require_turn()
        transcript = event.transcript
        turn.record.transcript = transcript.text
        if self._captions is not None:
            self._captions.thinking()

        def first_token() -> None:
            turn.record.first_token = time.monotonic()

        def strike(strike: Strike, spoken: bool) -> None:
            turn.record.strikes.append(str(strike))
            if spoken:
                turn.record.outcome = "cut"
                if strike.kind == "content":
                    turn.cancel.set()  # what is playing, or synthesised ahead, is not said either

        def gave_up() -> None:
            turn.record.outcome = "gave_up"

        def prompted(tokens: int, recall_ms: float) -> None:
            turn.record.prompt_tokens, turn.record.recall_ms = tokens, round(recall_ms, 1)

        def think() -> None:
            # this job owns the reply: the model's stream, the checks and the strikes run here, and the
            # sentences are handed to the voice's synthesis as they come
            events = ReplyEvents(first_token, strike, gave_up, prompted)
            sentences = self._thinker.sentences(transcript.text, turn.cancel, events, turn.prompt_speaker)
            try:
                first = next(sentences, None)
                if first is None:
                    self._post(ReplyStarted(turn=turn.key, reply=None))
                    return
                turn.record.first_sentence = time.monotonic()
                speech = self._speaker.prepare(turn.cancel)
                speech.add(first)
                turn.pending = speech
                self._post(ReplyStarted(turn=turn.key, reply=first))
                feed(speech, sentences)
            finally:
                sentences.close()

        self._job(turn, think)

    def _entered_speaking(self, event: TurnEvent) -> None:
        turn = self._require_turn()
        self._hearing.set_mode(Mode.SPEAKING)
        pending = turn.pending
        assert pending is not None, "the table allows speaking only with a reply"
        turn.speaking = True
        turn.record.released = time.monotonic()

        def first_audio() -> None:
            turn.record.first_audio = time.monotonic()
            self._activity(turn.record.first_audio)

        captions = (
            _FirmCaptions(self._captions, turn.cancel, self._hearing.retract_s)
            if self._captions is not None
            else None
        )

        def saying(sentence: str, duration_s: float) -> None:
            if not turn.cancel.is_set():
                turn.record.reply.append(sentence)  # as it is heard: an interrupted turn keeps its start
            if captions is not None:
                captions.saying(sentence, duration_s)

        def speak() -> None:
            spoken = pending.play(turn.cancel, first_audio, saying)
            if captions is not None:
                captions.release()  # heard to its end (or interrupted): no longer retractable
            turn.record.done = time.monotonic()
            turn.record.playback = spoken.playback
            if spoken.sentences and not turn.cancel.is_set():
                speaker = turn.record.speaker or None
                self._thinker.remember(turn.record.transcript, " ".join(spoken.sentences), speaker)
                if self._crowd is not None:
                    self._crowd.answered(turn.record.speaker, turn.record.done)
            self._post(Spoken(turn=turn.key))

        self._job(turn, speak)

    def _entered_reset(self, event: TurnEvent) -> None:
        self._listening.clear()
        self._hearing.set_mode(Mode.OFF)
        turn = self._turn
        if turn is not None:
            turn.cancel.set()
            if turn.record.outcome == "open":
                turn.record.outcome = "reset"
        forget_memory = event.forget if isinstance(event, Reset) else None
        if forget_memory is None:
            return
        if turn is not None:
            wait(turn.jobs, timeout=_FORGET_WAIT_S)  # a reply finishing now must not be remembered later
            turn.record.transcript, turn.record.reply = "", []
            turn.record.outcome = "forgotten"
        forget_memory()
        if self._crowd is not None:
            self._crowd.forget()  # the speakers' voices go with the session
        self.records.clear()

    def _attribute(
        self, crowd: WhomToAnswer, turn: _Turn, voice: np.ndarray | None, transcript: str
    ) -> Attribution:
        """Who said the turn, and whether it is answered. A turn started early is not learned (a voice
        added, a name or the floor taken) until it stands: dropped because the speaker went on, it would
        leave a half-sentence's voice behind as a speaker of its own."""
        now = time.monotonic()
        with self._crowd_lock:
            learn = not turn.record.early or turn.confirmed
            attribution = crowd.attribute(voice, transcript, now, learn)
            if not learn:
                turn.unlearned = (voice, transcript, now)
        return attribution

    def _turn_over(self, event: TurnEvent) -> None:
        """The speaker's turn ended after the pause that started the turn in flight: its work stands."""
        turn = self._require_turn()
        with self._crowd_lock:
            turn.confirmed = True
            if turn.unlearned is not None and self._crowd is not None:
                self._crowd.attribute(*turn.unlearned)
            turn.unlearned = None
        if isinstance(event, TurnConfirmed) and event.utterance is not None:
            turn.record.endpoint = event.utterance.endpoint_at

    def _require_turn(self) -> _Turn:
        if self._turn is None:
            raise RuntimeError("no turn in flight")
        return self._turn

    def _close_turn(self, outcome: str) -> None:
        turn, self._turn = self._turn, None
        if turn is None:
            return
        turn.unlearned = None  # a voice never confirmed as a turn of its own is dropped
        turn.cancel.set()  # releases whatever the turn still holds (generation, synthesis, playback)
        wait(turn.jobs, timeout=_CLOSE_WAIT_S)  # cancelled jobs end within milliseconds: their figures count
        if turn.pending is not None and not turn.speaking:
            self._jobs.submit(turn.pending.close)  # never played: its synthesis and generation stop
        if outcome == "resumed":
            # dropped unseen: the speaker went on, and the next turn takes its place (and its states)
            self._turn_count -= 1
            self.dropped_early += 1
            if turn.speaking:
                self.retracted += 1
                log.info("the speaker went on just after the reply started: the reply is retracted")
            else:
                log.info("the speaker went on after a pause: the work started early is dropped")
            return
        states, self._turn_states = self._turn_states, self._turn_states[-1:]
        if turn.record.early and not self.machine.turn_over:
            self._hearing.drop_early(turn.early_id)  # the turn ended before the speaker's turn did
        record = turn.record
        record.done = record.done or time.monotonic()
        if record.outcome == "open":
            record.outcome = outcome
        record.states = states
        self.records.append(record)
        self._on_turn(record)
        self._jobs.submit(self._rest_voice)  # off the loop: the voice's memory goes back while it is quiet

    def _rest_voice(self) -> None:
        try:
            self._speaker.rest()
        except Exception:
            log.exception("the voice could not give back its memory after a turn")
