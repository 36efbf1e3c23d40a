"""Piper's memory arena stays the size of an ordinary sentence: a long one gives its extra memory back."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from machine.backends.piper_synthesizer import ARENA_PHONEME_IDS, PiperSynthesizer

SHRINK = "memory.enable_memory_arena_shrinkage"


def shrinks(options: onnxruntime.RunOptions | None) -> bool:
    return options is not None and options.get_run_config_entry(SHRINK) == "cpu:0"


@pytest.mark.models
def test_a_long_sentence_shrinks_the_arena_after_it_and_an_ordinary_one_does_not(
    synthesizer: PiperSynthesizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[tuple[int, bool]] = []
    real_run = onnxruntime.InferenceSession.run

    def spy(
        session: onnxruntime.InferenceSession,
        output_names: list[str] | None,
        inputs: dict[str, np.ndarray],
        run_options: onnxruntime.RunOptions | None = None,
    ) -> list[np.ndarray]:
        runs.append((inputs["input"].shape[-1], shrinks(run_options)))
        return real_run(session, output_names, inputs, run_options)

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", spy)
    ordinary = "That sounds like a lot of fun."
    long = " and ".join(["the quick brown fox jumps over the lazy dog near the river bank"] * 3) + "."

    assert sum(len(chunk.samples) for chunk in synthesizer.synthesize(ordinary)) > 0
    assert sum(len(chunk.samples) for chunk in synthesizer.synthesize(long)) > 0

    (short_ids, short_shrunk), (long_ids, long_shrunk) = runs
    assert short_ids <= ARENA_PHONEME_IDS < long_ids
    assert not short_shrunk
    assert long_shrunk
