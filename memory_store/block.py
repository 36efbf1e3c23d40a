"""A memory block: one bot's memories, its recent window, recall, and its session.

The window is the last `recall.window_size` memories. Recall compares the input with the memories
outside the window (what the user said, embedded) and brings the most similar ones, above
`recall.min_similarity`, forward as recollections; small talk ("hi", "okay") recalls nothing. A
recalled memory is not changed or moved: it keeps
its place in time, is shown as a recollection for the turn that recalled it only, and can be recalled
again later. A session ends after `sessions.idle_timeout_s` without activity, or at once on `reset()`;
then the block's memories are forgotten.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from memory_store.chroma.block_records import BlockGoneError, BlockRecords, memory_id
from memory_store.chroma.chroma_store import ChromaStore
from memory_store.embedding import Embedder, embed_memories
from memory_store.errors import MemoryStoreError
from memory_store.memory import Memory, TurnContext, capped
from memory_store.settings import MemoryStoreSettings
from memory_store.small_talk import SmallTalkGate

logger = logging.getLogger(__name__)

SPEAKER_CHARS = 100


class MemoryBlock:
    """One named space of memories, from `MemorySystem.block(name)`; safe to use from several threads."""

    def __init__(
        self,
        name: str,
        store: ChromaStore | None,
        embedder: Embedder,
        settings: MemoryStoreSettings,
        clock: Callable[[], float],
        small_talk: SmallTalkGate | None = None,
    ) -> None:
        self.name = name
        self._small_talk = small_talk
        self._store = store
        self._records: BlockRecords | None = store.records(name) if store is not None else None
        self._embedder = embedder
        self._settings = settings
        self._clock = clock
        self._lock = threading.RLock()
        self._window: deque[Memory] = deque(maxlen=settings.recall.window_size)
        self._next_seq = 0
        self._last_activity: float | None = None
        self._stored_activity: float | None = None
        self._load()

    def _load(self) -> None:
        if self._records is None:
            return
        try:
            stored = self._records.last_activity()
            if stored is None:
                return
            self._last_activity = self._stored_activity = stored
            if self.end_if_idle(self._clock()):
                return
            self._next_seq = self._records.count()
            self._window.extend(self._records.latest(self._next_seq, self._settings.recall.window_size))
        except Exception as exc:
            message = (
                f"memory block {self.name} cannot be read from the store ({type(exc).__name__}: {exc}); "
                "restart to let the store check and rebuild it, move the store folder away to start "
                "empty, or set memory_store.on_store_error: degrade to talk without memory"
            )
            if self._settings.on_store_error == "fail":
                raise MemoryStoreError(message) from None
            logger.error("%s\nDEGRADED: this block keeps its memories in memory only", message)
            self._store = self._records = None
            self._window.clear()
            self._next_seq = 0

    @property
    def embedder(self) -> Embedder:
        """The embedding model recall uses (shared, so the reply's answer from memory loads no other)."""
        return self._embedder

    def context(self, user_input: str) -> TurnContext:
        """Recollections for `user_input` and the recent window. Counts as activity; never raises."""
        with self._lock:
            try:
                self._heard(self._clock())
            except Exception:
                logger.exception("memory block %s: could not record activity", self.name)
            recollections = self._recall(user_input)
            return TurnContext(recollections=recollections, window=tuple(self._window))

    def _recall(self, user_input: str) -> tuple[Memory, ...]:
        recall = self._settings.recall
        text = capped(user_input, self._settings.max_text_chars, "user input")
        # The query also runs when nothing lies outside the window: it is how a block learns that another
        # process ended its session (its collection is gone) before showing a stale window.
        wanted = min(self._next_seq, recall.top_k + len(self._window))
        if self._records is None or not text or wanted == 0:
            return ()
        try:
            vector = self._embedder.embed([text])[0]
            hits = self._records.nearest(vector, wanted)
            if self._small_talk is not None and self._small_talk.is_small_talk(vector):
                return ()
        except BlockGoneError:
            logger.info("memory block %s was forgotten by another process; a new session starts", self.name)
            self._clear()
            return ()
        except Exception:
            logger.exception(
                "memory block %s: recall failed; this turn uses the recent window only", self.name
            )
            return ()
        in_window = {memory.id for memory in self._window}
        recalled = [
            memory
            for memory, similarity in hits
            if memory.id not in in_window and similarity >= recall.min_similarity
        ]
        return tuple(recalled[: recall.top_k])

    def remember(self, question: str, answer: str, speaker: str | None = None) -> Memory | None:
        """Store one exchange (after the reply was spoken); None when both texts are empty.

        Texts are cut to `max_text_chars`. Counts as activity. A store failure raises `MemoryStoreError`,
        or with `on_store_error: degrade` is logged and the memory is kept in the window only.
        """
        limit = self._settings.max_text_chars
        question, answer = capped(question, limit, "question"), capped(answer, limit, "answer")
        if not question and not answer:
            logger.warning("memory block %s: nothing to remember (question and answer are empty)", self.name)
            return None
        who = None if speaker is None else capped(speaker, SPEAKER_CHARS, "speaker") or None
        with self._lock:
            now = self._clock()
            self.end_if_idle(now)
            memory = Memory(memory_id(self._next_seq), question, answer, now, who)
            try:
                memory = self._store_memory(memory, now)
                self._next_seq += 1
            except Exception as exc:
                if self._settings.on_store_error == "fail":
                    raise MemoryStoreError(
                        f"memory block {self.name}: cannot store the memory ({exc}); check the store "
                        "(memory_store.path or the Chroma server)"
                    ) from exc
                logger.error(
                    "memory block %s: cannot store the memory (%s); kept in the window only", self.name, exc
                )
                memory = replace(memory, id=f"{memory.id}-unsaved")  # the stored ids stay 0..count-1
            self._window.append(memory)
            self._heard(now)
            return memory

    def _store_memory(self, memory: Memory, now: float) -> Memory:
        if self._records is None:
            return memory
        vectors = embed_memories(self._embedder, [memory])
        try:
            self._records.add([memory], vectors, now)
        except BlockGoneError:
            logger.info("memory block %s was forgotten by another process; a new session starts", self.name)
            self._clear()
            memory = replace(memory, id=memory_id(0))
            self._records.add([memory], vectors, now)
        return memory

    def touch(self) -> None:
        """Noise heard or the bot speaking: the session goes on. Never raises."""
        with self._lock:
            try:
                self._heard(self._clock())
            except Exception:
                logger.exception("memory block %s: could not record activity", self.name)

    def _heard(self, now: float) -> None:
        self.end_if_idle(now)
        self._last_activity = now
        interval = self._settings.sessions.activity_write_interval_s
        if self._records is not None and (
            self._stored_activity is None or now - self._stored_activity >= interval
        ):
            self._records.write_activity(now)
            self._stored_activity = now

    def flush_activity(self) -> None:
        """Write the last activity if the throttle held it back (so other processes see it)."""
        with self._lock:
            last = self._last_activity
            if self._records is not None and last is not None and last != self._stored_activity:
                self._records.write_activity(last)
                self._stored_activity = last

    def reset(self, why: str = "reset") -> None:
        """End the session now (a reset command or signal, or the runtime stopping): its memories are
        forgotten, and with the embedded store purged from its files; `why` goes to the log."""
        with self._lock:
            self._forget(why)

    def end_if_idle(self, now: float) -> bool:
        """Forget the session if it has been idle longer than `sessions.idle_timeout_s`; True if it ended."""
        with self._lock:
            last = self._last_activity
            if last is None or now - last <= self._settings.sessions.idle_timeout_s:
                return False
            self._forget(f"idle for {now - last:.0f} s")
            return True

    def _forget(self, why: str) -> None:
        if self._store is not None:
            self._store.forget([self.name])
        self._clear()
        logger.info("memory block %s: session ended (%s); its memories are forgotten", self.name, why)

    def _clear(self) -> None:
        self._window.clear()
        self._next_seq = 0
        self._last_activity = self._stored_activity = None
        if self._records is not None:
            self._records.detach()
