"""Speaking a reply: sentences are synthesised ahead in the background while earlier ones play."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
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


class Speaker:
    """Plays a stream of sentences through a sink, keeping up to `ahead` sentences synthesised in advance."""

    def __init__(self, synthesizer: Synthesizer, sink: AudioSink, ahead: int = 2) -> None:
        self._synthesizer = synthesizer
        self._sink = sink
        self._ahead = ahead

    def speak(
        self,
        sentences: Iterable[str],
        cancel: threading.Event,
        on_first_audio: Callable[[], None] = lambda: None,
        on_sentence: Callable[[str, float], None] = lambda sentence, duration_s: None,
    ) -> Spoken:
        """Synthesise and play until the sentences run out or `cancel` is set; returns what was played.

        `on_sentence(sentence, duration_s)` is called just before the first audio of each sentence plays,
        with the length in seconds of that first chunk: the whole sentence for a synthesiser that yields
        one chunk per sentence (Piper does), otherwise only its start (later chunks are not announced)."""
        ready: queue.Queue[object] = queue.Queue(maxsize=self._ahead)
        failure: list[BaseException] = []
        stop = threading.Event()

        def put(item: object) -> bool:
            while not (cancel.is_set() or stop.is_set()):
                try:
                    ready.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def synthesise() -> None:
            try:
                for sentence in sentences:
                    for audio in self._synthesizer.synthesize(sentence):
                        if not put(_Synthesised(sentence, audio)):
                            return
                    if cancel.is_set() or stop.is_set():
                        return
            except Exception as exc:
                failure.append(exc)
            finally:
                close = getattr(sentences, "close", None)
                if close is not None:
                    close()  # stops generation of text that will not be spoken
                put(_END)

        worker = threading.Thread(target=synthesise, name="speaker-synthesis", daemon=True)
        worker.start()
        played: list[str] = []
        started = False
        playback = PlaybackReport()
        try:
            while not cancel.is_set():
                try:
                    item = ready.get(timeout=0.05)
                except queue.Empty:
                    continue
                if not isinstance(item, _Synthesised):
                    break
                if not started:
                    self._sink.begin_reply(item.audio.sample_rate)
                    started = True
                    on_first_audio()
                self._play(item, played, cancel, on_sentence)
        finally:
            stop.set()
            worker.join()
            if started:
                playback = self._sink.end_reply(cancel)
        if failure:
            raise RuntimeError(f"speech synthesis failed: {failure[0]}") from failure[0]
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
