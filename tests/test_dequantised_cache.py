"""The chat model's dequantised-weights cache: a cache that cannot be written costs only the speed-up."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path, PureWindowsPath

import platformdirs
import pytest
from platformdirs.windows import Windows

from machine.backends.dequantised_cache import dequantised_folder, save_dequantised


class _Saves:
    """Stands in for the model and the tokenizer: writes one file where it is told."""

    def __init__(self, name: str) -> None:
        self.name = name

    def save_pretrained(self, folder: Path) -> None:
        (Path(folder) / self.name).write_text("weights", encoding="utf-8")


def _save(folder: Path) -> None:
    """What the chat model does after loading: the model's and the tokenizer's files into `folder`."""
    save_dequantised(folder, _Saves("model.safetensors"), _Saves("tokenizer.json"))


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
    with caplog.at_level(logging.WARNING, logger="machine.backends.dequantised_cache"):
        _save(folder)  # raised UnboundLocalError before the fix
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert str(folder) in message and "Permission denied" in message
    assert not folder.exists()


def test_a_failed_save_leaves_no_staging_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "dequantised" / "smollm2-0123"
    folder.mkdir(parents=True)
    (folder / "other-process-won").write_text("x", encoding="utf-8")  # the rename onto it fails
    with caplog.at_level(logging.WARNING, logger="machine.backends.dequantised_cache"):
        _save(folder)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_a_writable_cache_keeps_the_weights(tmp_path: Path) -> None:
    folder = tmp_path / "dequantised" / "smollm2-0123"
    _save(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "tokenizer.json"]


def test_the_cache_is_in_the_platform_s_cache_folder_unless_one_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Windows %LOCALAPPDATA%\\vrchat-companion\\Cache (platformdirs, simulated), not ~/.cache."""
    gguf = tmp_path / "smollm2.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(platformdirs, "PlatformDirs", Windows)
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", r"C:\Users\Robin\AppData\Local")
    cached = dequantised_folder(gguf, None)
    assert cached is not None and cached.name.startswith("smollm2-")
    expected = PureWindowsPath(r"C:\Users\Robin\AppData\Local\vrchat-companion\Cache\dequantised")
    assert PureWindowsPath(str(cached.parent)) == expected
    mine = dequantised_folder(gguf, tmp_path / "mine")
    assert mine is not None and mine.parent == tmp_path / "mine" / "dequantised", "the setting wins"
