"""Speaking a reply: sentences are synthesised ahead in the background while earlier ones play.

Synthesis can start before playback (:meth:`Speaker.prepare`): a reply that waits for the end of the
user's turn is already audio when it is released. Prepared speech that is never played is closed, and
nothing of it reaches the sink.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from machine.ports import AudioSink, PlaybackReport, SpeechAudio, Synthesizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Synthesised:
    sentence: str
    audio: SpeechAudio


_END = object()


@dataclass(frozen=True)
class Spoken:
    """What a reply came to: the sentences that started playing, and how the audio fared."""

    sentences: list[str]
    playback: PlaybackReport


class Synthesis:
    """A thread that synthesises sentences into a bounded queue, `ahead` chunks before they are played."""

    def __init__(
        self, synthesizer: Synthesizer, sentences: Iterable[str], ahead: int, cancel: threading.Event
    ) -> None:
        self._synthesizer = synthesizer
        self._sentences = sentences
        self._cancel = cancel
        self._stop = threading.Event()
        self._ready: queue.Queue[object] = queue.Queue(maxsize=ahead)
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="speaker-synthesis", daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[_Synthesised]:
        """The synthesised chunks in order, until the sentences run out or `cancel` is set."""
        while not self._cancel.is_set():
            try:
                item = self._ready.get(timeout=0.05)
            except queue.Empty:
                continue
            if not isinstance(item, _Synthesised):
                return
            yield item

    def close(self) -> None:
        """Stop synthesising and wait for the thread."""
        self._stop.set()
        self._thread.join()

    def _put(self, item: object) -> bool:
        while not (self._cancel.is_set() or self._stop.is_set()):
            try:
                self._ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for sentence in self._sentences:
                for audio in self._synthesizer.synthesize(sentence):
                    if not self._put(_Synthesised(sentence, audio)):
                        return
                if self._cancel.is_set() or self._stop.is_set():
                    return
        except Exception as exc:
            self.failure = exc
        finally:
            close = getattr(self._sentences, "close", None)
            if close is not None:
                close()  # stops generation of text that will not be spoken
            self._put(_END)


class Speaker:
    """Plays a stream of sentences through a sink, keeping up to `ahead` sentences synthesised in advance."""

    def __init__(self, synthesizer: Synthesizer, sink: AudioSink, ahead: int = 2) -> None:
        self._synthesizer = synthesizer
        self._sink = sink
        self._ahead = ahead

    def warm_up(self) -> None:
        """Synthesise a word and drop it: the voice's first-call costs are paid before the first reply."""
        for _ in self._synthesizer.synthesize("Hello."):
            pass

    def prepare(self, sentences: Iterable[str], cancel: threading.Event) -> Synthesis:
        """Start synthesising `sentences` now, to be played by :meth:`speak` (or closed unplayed)."""
        return Synthesis(self._synthesizer, sentences, self._ahead, cancel)

    def speak(
        self,
        speech: Synthesis | Iterable[str],
        cancel: threading.Event,
        on_first_audio: Callable[[], None] = lambda: None,
        on_sentence: Callable[[str, float], None] = lambda sentence, duration_s: None,
    ) -> Spoken:
        """Synthesise (unless `speech` was prepared) and play until the sentences run out or `cancel` is
        set; returns what was played.

        `on_sentence(sentence, duration_s)` is called just before the first audio of each sentence plays,
        with the length in seconds of that first chunk: the whole sentence for a synthesiser that yields
        one chunk per sentence (Piper does), otherwise only its start (later chunks are not announced)."""
        synthesis = speech if isinstance(speech, Synthesis) else self.prepare(speech, cancel)
        played: list[str] = []
        playback = PlaybackReport()
        try:
            for item in synthesis:
                if not played:
                    self._sink.begin_reply(item.audio.sample_rate)
                    on_first_audio()
                self._play(item, played, cancel, on_sentence)
        finally:
            synthesis.close()
            if played:
                playback = self._sink.end_reply(cancel)
        if synthesis.failure is not None:
            raise RuntimeError(f"speech synthesis failed: {synthesis.failure}") from synthesis.failure
        return Spoken(played, playback)

    def _play(
        self,
        item: _Synthesised,
        played: list[str],
        cancel: threading.Event,
        on_sentence: Callable[[str, float], None],
    ) -> None:
        """Play one chunk; the first chunk of a sentence announces it and adds it to `played`."""
        if not played or played[-1] != item.sentence:
            on_sentence(item.sentence, len(item.audio.samples) / item.audio.sample_rate)
            played.append(item.sentence)
        self._sink.play(item.audio.samples, cancel)
