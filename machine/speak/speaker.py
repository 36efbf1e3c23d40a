"""Speaking a reply: sentences are synthesised ahead in the background while earlier ones play.

Synthesis starts before playback (:meth:`Speaker.prepare`): a reply that waits for the end of the user's
turn is already audio when it is released. The thread that makes the reply's sentences adds them
(:meth:`Synthesis.add`); the synthesis thread only synthesises them. Prepared speech that is never played
is closed, and nothing of it reaches the sink.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from machine.ports import AudioSink, PlaybackReport, SpeechAudio, Spoken, Synthesizer
from machine.shared.sentence_feed import feed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Synthesised:
    sentence: str
    audio: SpeechAudio


_END = object()


class Synthesis:
    """A reply's speech: a thread synthesises the sentences added into a bounded queue, `ahead` chunks
    before they are played (a :class:`machine.ports.PreparedSpeech`)."""

    def __init__(
        self, synthesizer: Synthesizer, sink: AudioSink, ahead: int, cancel: threading.Event
    ) -> None:
        self._synthesizer = synthesizer
        self._sink = sink
        self._cancel = cancel
        self._stop = threading.Event()
        self._handed: str | None = None
        """The sentence added and not yet taken by the synthesis thread (`add` waits until it is)."""
        self._finished = False
        self._changed = threading.Condition()
        self._ready: queue.Queue[object] = queue.Queue(maxsize=ahead)
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="speaker-synthesis", daemon=True)
        self._thread.start()

    def _over(self) -> bool:
        return self._cancel.is_set() or self._stop.is_set()

    def add(self, sentence: str) -> bool:
        """Hand a sentence to the synthesis thread, returning once it has taken it (so the reply is made
        at most one sentence ahead of synthesis); False once nothing more will be spoken (cancelled,
        closed, or synthesis failed)."""
        with self._changed:
            if self._over() or not self._thread.is_alive():
                return False
            self._handed = sentence
            self._changed.notify_all()
            while self._handed is not None:
                if self._over() or not self._thread.is_alive():
                    return False
                self._changed.wait(0.05)
            return True

    def finish(self) -> None:
        """No more sentences: once those queued are synthesised, playback ends."""
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def close(self) -> None:
        """Stop synthesising and wait for the thread."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self._thread.join()

    def play(
        self,
        cancel: threading.Event,
        on_first_audio: Callable[[], None] = lambda: None,
        on_sentence: Callable[[str, float], None] = lambda sentence, duration_s: None,
    ) -> Spoken:
        """Play until the sentences run out or `cancel` is set; returns what was played.

        `on_sentence(sentence, duration_s)` is called just before the first audio of each sentence plays,
        with the length in seconds of that first chunk: the whole sentence for a synthesiser that yields
        one chunk per sentence (Piper does), otherwise only its start (later chunks are not announced)."""
        played: list[str] = []
        playback = PlaybackReport()
        try:
            for item in self._synthesised():
                if not played:
                    self._sink.begin_reply(item.audio.sample_rate)
                    on_first_audio()
                if not played or played[-1] != item.sentence:
                    on_sentence(item.sentence, len(item.audio.samples) / item.audio.sample_rate)
                    played.append(item.sentence)
                self._sink.play(item.audio.samples, cancel)
        finally:
            self.close()
            if played:
                playback = self._sink.end_reply(cancel)
        if self.failure is not None:
            raise RuntimeError(f"speech synthesis failed: {self.failure}") from self.failure
        return Spoken(played, playback)

    def _synthesised(self) -> Iterable[_Synthesised]:
        while not self._cancel.is_set():
            try:
                item = self._ready.get(timeout=0.05)
            except queue.Empty:
                continue
            if not isinstance(item, _Synthesised):
                return
            yield item

    def _next_sentence(self) -> str | None:
        with self._changed:
            while self._handed is None:
                if self._finished or self._over():
                    return None
                self._changed.wait(0.05)
            if self._over():
                return None
            sentence, self._handed = self._handed, None
            self._changed.notify_all()
            return sentence

    def _put(self, item: object) -> bool:
        while not self._over():
            try:
                self._ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while (sentence := self._next_sentence()) is not None:
                for audio in self._synthesizer.synthesize(sentence):
                    if not self._put(_Synthesised(sentence, audio)):
                        return
        except Exception as exc:
            self.failure = exc
        finally:
            self._put(_END)


class Speaker:
    """Plays replies through a sink, keeping up to `ahead` chunks synthesised in advance (a
    :class:`machine.ports.Voice`)."""

    def __init__(self, synthesizer: Synthesizer, sink: AudioSink, ahead: int = 2) -> None:
        self._synthesizer = synthesizer
        self._sink = sink
        self._ahead = ahead

    def warm_up(self) -> None:
        """Synthesise a word and drop it: the voice's first-call costs are paid before the first reply."""
        for _ in self._synthesizer.synthesize("Hello."):
            pass

    def rest(self) -> None:
        """A turn is over: the synthesiser gives back the memory it kept (see :meth:`Synthesizer.rest`)."""
        self._synthesizer.rest()

    def prepare(self, cancel: threading.Event) -> Synthesis:
        """Start a reply's synthesis now; sentences are added as they are made, then it is played (or
        closed unplayed)."""
        return Synthesis(self._synthesizer, self._sink, self._ahead, cancel)

    def speak(
        self,
        sentences: Iterable[str],
        cancel: threading.Event,
        on_first_audio: Callable[[], None] = lambda: None,
        on_sentence: Callable[[str, float], None] = lambda sentence, duration_s: None,
    ) -> Spoken:
        """Synthesise and play `sentences` as they come (see :meth:`Synthesis.play`): a thread of its own
        adds them, and closes them once nothing more will be spoken."""
        synthesis = self.prepare(cancel)
        feeder = threading.Thread(target=feed, args=(synthesis, sentences), name="speaker-feed", daemon=True)
        feeder.start()
        try:
            return synthesis.play(cancel, on_first_audio, on_sentence)
        finally:
            feeder.join()
