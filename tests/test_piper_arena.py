"""Piper's memory arena stays the size of an ordinary sentence: a long one gives its extra memory back, and
so does the end of a turn."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from machine.backends.piper_synthesizer import ARENA_PHONEME_IDS, PiperSynthesizer

SHRINK = "memory.enable_memory_arena_shrinkage"


def shrinks(options: onnxruntime.RunOptions | None) -> bool:
    return options is not None and options.get_run_config_entry(SHRINK) == "cpu:0"


class RunSpy:
    """Records each run of a Piper session: its phoneme ids and whether it shrank the arena."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runs: list[tuple[int, bool]] = []
        real_run = onnxruntime.InferenceSession.run

        def spy(
            session: onnxruntime.InferenceSession,
            output_names: list[str] | None,
            inputs: dict[str, np.ndarray],
            run_options: onnxruntime.RunOptions | None = None,
        ) -> list[np.ndarray]:
            self.runs.append((inputs["input"].shape[-1], shrinks(run_options)))
            return real_run(session, output_names, inputs, run_options)

        monkeypatch.setattr(onnxruntime.InferenceSession, "run", spy)


def spoken(synthesizer: PiperSynthesizer, text: str) -> int:
    return sum(len(chunk.samples) for chunk in synthesizer.synthesize(text))


@pytest.mark.models
def test_a_long_sentence_shrinks_the_arena_after_it_and_an_ordinary_one_does_not(
    synthesizer: PiperSynthesizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = RunSpy(monkeypatch)
    long = " and ".join(["the quick brown fox jumps over the lazy dog near the river bank"] * 3) + "."

    assert spoken(synthesizer, "That sounds like a lot of fun.") > 0
    assert spoken(synthesizer, long) > 0

    (short_ids, short_shrunk), (long_ids, long_shrunk) = spy.runs
    assert short_ids <= ARENA_PHONEME_IDS < long_ids
    assert not short_shrunk
    assert long_shrunk


@pytest.mark.models
def test_a_rest_shrinks_the_arena_once_and_ordinary_sentences_after_it_keep_theirs(
    synthesizer: PiperSynthesizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = RunSpy(monkeypatch)
    assert spoken(synthesizer, "That sounds like a lot of fun.") > 0
    synthesizer.rest()
    assert spoken(synthesizer, "What did you build today?") > 0

    assert [shrunk for _, shrunk in spy.runs] == [False, True, False]
    assert all(ids <= ARENA_PHONEME_IDS for ids, _ in spy.runs), "the rest is not a long sentence"
