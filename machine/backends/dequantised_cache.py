"""Where the chat model's dequantised GGUF weights are kept between starts, and how they are saved.

transformers dequantises a GGUF on every load (10-30 s); saved as safetensors, the next start loads in
about a second. Kept apart from `transformers_chat` so that neither needs torch or transformers imported
to name the folder or to save into it (the versions in the key are read from the installed metadata)."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Protocol

from companion_settings.folders import cache_folder

__all__ = ["Saveable", "dequantised_folder", "save_dequantised"]

log = logging.getLogger(__name__)


class Saveable(Protocol):
    """A model or tokenizer: anything with transformers' `save_pretrained`."""

    def save_pretrained(self, folder: Path) -> object: ...


def dequantised_folder(gguf: Path, cache_dir: Path | None) -> Path | None:
    """The cache folder for a GGUF file's dequantised weights, keyed by the file and the library versions
    (None when `gguf` is not a file). `cache_dir` overrides the platform's cache folder."""
    if not gguf.is_file():
        return None
    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{version('transformers')}|{version('torch')}"
    root = cache_dir or cache_folder()  # the platform's: $XDG_CACHE_HOME/vrchat-companion on Linux
    return root / "dequantised" / f"{gguf.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def save_dequantised(folder: Path, *parts: Saveable) -> None:
    """Save `parts` (the model, its tokenizer) into `folder`, whole or not at all.

    A cache that cannot be written (read-only, full) costs only the speed-up: the model loaded already,
    so one WARNING names the folder and the reason, and nothing half-written is left behind."""
    staging: Path | None = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder.parent))
        for part in parts:
            part.save_pretrained(staging)
        staging.rename(folder)
        log.info("saved the dequantised chat model to %s", folder)
    except OSError as exc:
        log.warning(
            "could not cache the dequantised chat model at %s (%s); it will be dequantised again at "
            "the next start (set machine.chat_model.cache_dir to a writable folder)",
            folder,
            exc.strerror or exc,
        )
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
