"""Typed settings of InfiniMemory: the `memory_store` section of the YAML configuration.

Environment variables prefixed ``MEMORY_STORE_`` override the file, e.g. ``MEMORY_STORE_RECALL__TOP_K=5``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from companion_settings import BUNDLED, REPO_ROOT, EnvOverFile, load_section
from companion_settings import Section as _Section
from companion_settings.folders import data_folder, note_earlier_default

EARLIER_DEFAULT_PATH = REPO_ROOT / "data" / "memory"
"""Where the embedded store was kept by default before it moved to the platform's data folder."""


def default_store_folder() -> Path:
    """The embedded store's folder when `memory_store.path` is not set: `memory` in the platform's data
    folder (see :mod:`companion_settings.folders`), whatever the working directory."""
    return data_folder() / "memory"


class RecallSettings(_Section):
    """The recent window and recall by cosine similarity."""

    window_size: int = Field(6, ge=0, le=200)
    """The last X memories shown to the model as history."""
    top_k: int = Field(5, ge=0, le=50)
    """At most this many memories from outside the window are recalled per input (0 = recall off)."""
    min_similarity: float = Field(0.275, ge=-1.0, le=1.0)
    """Cosine similarity a memory must reach against the input to be recalled (chosen on
    bench/data/recall_set.json with `bench/recall_quality.py`)."""
    small_talk_gate: float = Field(0.6, ge=0.0, le=1.0)
    """An input this similar to a small-talk phrase ("hi", "okay", "can you hear me") recalls nothing;
    1.0 turns the gate off."""


class SessionSettings(_Section):
    """When a block's session ends and its memories are forgotten."""

    idle_timeout_s: float = Field(900.0, ge=1.0, le=7 * 24 * 3600.0)
    """Idle time (no input, noise, speech or memory) that ends a session."""
    activity_write_interval_s: float = Field(5.0, ge=0.0, le=300.0)
    """The last-activity time is written to the store at most this often (other processes read it)."""
    expiry_check_every_s: float = Field(300.0, ge=1.0, le=24 * 3600.0)
    """How often the runtime's in-process timer runs the session-expiry flow (embedded Chroma only)."""
    expiry_jitter_s: float = Field(10.0, ge=0.0, le=3600.0)
    """A random 0..jitter seconds added to each interval of that timer."""
    forget_on_exit: bool = True
    """When the runtime stops (normal end, Ctrl-C, SIGTERM, an error) its block's session ends and is
    forgotten, durably, before the store closes; false keeps it for the next start (until it expires)."""

    @model_validator(mode="after")
    def _write_often_enough(self) -> SessionSettings:
        if self.activity_write_interval_s >= self.idle_timeout_s:
            raise ValueError(
                "activity_write_interval_s must be well below idle_timeout_s, or a session other processes "
                "watch would look idle while it is in use"
            )
        return self


class ServerSettings(_Section):
    """The Chroma server used when `client` is `http` (start one with `chroma run --path DIR`)."""

    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8000, ge=1, le=65535)
    ssl: bool = False


class HnswSettings(_Section):
    """Chroma's approximate nearest-neighbour index of each block (applies to blocks created afterwards)."""

    ef_search: int = Field(100, ge=10, le=2000)
    ef_construction: int = Field(100, ge=10, le=2000)
    max_neighbors: int = Field(16, ge=4, le=128)


class MemoryStoreSettings(EnvOverFile):
    """Everything InfiniMemory reads from the `memory_store` section."""

    model_config = SettingsConfigDict(
        env_prefix="MEMORY_STORE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    client: Literal["persistent", "http"] = "persistent"
    path: Path = Field(default_factory=default_store_folder)
    """The embedded store's folder; null (the default) = `memory` in the platform's data folder."""
    server: ServerSettings = ServerSettings()
    embedding_model: str = Field(BUNDLED, min_length=1)
    embedding_device: str = "cpu"
    max_text_chars: int = Field(2000, ge=50, le=100_000)
    on_store_error: Literal["fail", "degrade"] = "fail"
    recall: RecallSettings = RecallSettings()
    sessions: SessionSettings = SessionSettings()
    hnsw: HnswSettings = HnswSettings()

    @field_validator("path", mode="before")
    @classmethod
    def _platform_folder_when_null(cls, value: object) -> object:
        return default_store_folder() if value is None else value


def load_settings(explicit: Path | None = None) -> MemoryStoreSettings:
    """Read and validate the `memory_store` section; a relative `path` is taken from the file's folder, and
    no `path` means the platform's data folder."""
    settings, config_file = load_section(MemoryStoreSettings, "memory_store", explicit)
    if settings.path != default_store_folder() and not settings.path.is_absolute():
        settings = settings.model_copy(update={"path": (config_file.parent / settings.path).resolve()})
    return settings


def note_earlier_store(settings: MemoryStoreSettings) -> None:
    """When the embedded store opens in the default folder for the first time, point out a store that an
    earlier version left in the checkout's data/memory (it is not read from there)."""
    if settings.client == "persistent" and settings.path == default_store_folder():
        note_earlier_default(EARLIER_DEFAULT_PATH, settings.path, "memory_store.path")
