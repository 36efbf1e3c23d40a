"""Property test: any sequence of turns, noise, idle time, resets and expiry runs keeps the block's
invariants (hypothesis state machine over a real embedded Chroma, word-hash embeddings)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from memory_fakes import FakeClock, WordHashEmbedder, settings_for

from memory_store import MemorySystem

pytestmark = pytest.mark.slow  # a stateful search over real stores (seconds)

WINDOW, TOP_K, IDLE = 3, 2, 600.0
WORDS = st.sampled_from(["kites", "boats", "trains", "cats", "rain", "music"])


class BlockMachine(RuleBasedStateMachine):
    """The model: the questions of the current session in order, and the last activity time."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="memory-machine-"))
        self.clock = FakeClock()
        store_settings = settings_for(
            self.folder,
            recall={"window_size": WINDOW, "top_k": TOP_K, "min_similarity": 0.3},
            sessions={"idle_timeout_s": IDLE},
        )
        self.system = MemorySystem.open(store_settings, clock=self.clock, embedder=WordHashEmbedder())
        self.block = self.system.block("celeste")
        self.session: list[str] = []
        self.last_activity: float | None = None
        self.turns = 0

    def _activity(self) -> None:
        if self.last_activity is not None and self.clock.now - self.last_activity > IDLE:
            self.session = []
        self.last_activity = self.clock.now

    @rule(topic=WORDS)
    def remember(self, topic: str) -> None:
        self.turns += 1
        question = f"turn {self.turns} about {topic}"
        memory = self.block.remember(question, f"I like {topic} too")
        self._activity()
        self.session.append(question)
        assert memory is not None and memory.question == question

    @rule(topic=WORDS)
    def context(self, topic: str) -> None:
        context = self.block.context(f"tell me about {topic}")
        self._activity()
        window = [memory.question for memory in context.window]
        recalled = [memory.question for memory in context.recollections]
        assert window == self.session[-WINDOW:]
        assert len(recalled) == len(set(recalled)) <= TOP_K
        assert set(recalled) <= set(self.session[:-WINDOW]), "recalled from outside the window only"
        assert all(topic in question for question in recalled)

    @rule()
    def touch(self) -> None:
        self.block.touch()
        self._activity()

    @rule(seconds=st.sampled_from([1.0, IDLE / 2, IDLE + 1]))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def reset(self) -> None:
        self.block.reset()
        self.session, self.last_activity = [], None

    @rule()
    def expire(self) -> None:
        idle = self.last_activity is not None and self.clock.now - self.last_activity > IDLE
        assert self.system.expire_idle_sessions() == (["celeste"] if idle else [])
        if idle:
            self.session, self.last_activity = [], None

    @precondition(lambda self: self.last_activity is None or self.clock.now - self.last_activity <= IDLE)
    @invariant()
    def window_is_the_sessions_latest(self) -> None:
        assert [memory.question for memory in self.block.context("").window] == self.session[-WINDOW:]
        self._activity()

    def teardown(self) -> None:
        self.system.close()
        shutil.rmtree(self.folder, ignore_errors=True)


TestBlockMachine = BlockMachine.TestCase
TestBlockMachine.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
