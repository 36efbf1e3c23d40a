"""The shipped recall settings on the hand-labelled recall set (bench/data/recall_set.json), through a
real memory block with the bundled all-MiniLM-L6-v2: paraphrased questions find their memory, small talk
recalls nothing. The full sweep that chose the settings is `bench/recall_quality.py`."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from memory_store import SentenceTransformerEmbedder
from memory_store.settings import RecallSettings

pytestmark = pytest.mark.models

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_shipped_recall_defaults_meet_the_goals_on_the_labelled_set(
    minilm: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    recall_quality = importlib.import_module("recall_quality")
    labelled = recall_quality.load_set(BENCH / "data" / "recall_set.json")
    shipped = RecallSettings()

    figures = recall_quality.through_store(
        minilm, labelled, shipped.top_k, shipped.min_similarity, shipped.small_talk_gate
    )

    assert len(labelled.memories) >= 200 and len(labelled.questions) >= 40 and len(labelled.small_talk) >= 20
    assert figures["recall_at_k"] >= 0.95, f"missed: {figures['missed']}"
    assert figures["small_talk_false_recall"] <= 0.05, f"recalling: {figures['small_talk_recalling']}"
