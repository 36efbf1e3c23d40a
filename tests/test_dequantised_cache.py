"""The chat model's dequantised-weights cache: a cache that cannot be written costs only the speed-up."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest

from machine.backends.transformers_chat import TransformersChatModel


class _Saves:
    """Stands in for the model and the tokenizer: writes one file where it is told."""

    def __init__(self, name: str) -> None:
        self.name = name

    def save_pretrained(self, folder: Path) -> None:
        (Path(folder) / self.name).write_text("weights", encoding="utf-8")


def _unloaded_model() -> TransformersChatModel:
    """The class without loading a model: only what `_save_dequantised` uses."""
    model = TransformersChatModel.__new__(TransformersChatModel)
    model.model = _Saves("model.safetensors")
    model.tokenizer = _Saves("tokenizer.json")
    return model


def _deny(*args: object, **kwargs: object) -> None:
    raise PermissionError(13, "Permission denied")


@pytest.mark.parametrize("failing", ["mkdir", "mkdtemp"])
def test_an_unwritable_cache_logs_one_warning_and_the_model_stays_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, failing: str
) -> None:
    if failing == "mkdir":
        monkeypatch.setattr(Path, "mkdir", _deny)
    else:
        monkeypatch.setattr(tempfile, "mkdtemp", _deny)
    folder = tmp_path / "dequantised" / "smollm2-0123"
    with caplog.at_level(logging.WARNING, logger="machine.backends.transformers_chat"):
        _unloaded_model()._save_dequantised(folder)  # raised UnboundLocalError before the fix
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert str(folder) in message and "Permission denied" in message
    assert not folder.exists()


def test_a_failed_save_leaves_no_staging_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "dequantised" / "smollm2-0123"
    folder.mkdir(parents=True)
    (folder / "other-process-won").write_text("x", encoding="utf-8")  # the rename onto it fails
    with caplog.at_level(logging.WARNING, logger="machine.backends.transformers_chat"):
        _unloaded_model()._save_dequantised(folder)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_a_writable_cache_keeps_the_weights(tmp_path: Path) -> None:
    folder = tmp_path / "dequantised" / "smollm2-0123"
    _unloaded_model()._save_dequantised(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "tokenizer.json"]
