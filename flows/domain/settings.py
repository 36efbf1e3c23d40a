"""Typed settings of the VRChat flows: the `flows` section of the YAML configuration.

Environment variables prefixed ``FLOWS_`` override the file, e.g. ``FLOWS_GROUP__GROUP_ID=grp_...``.
Credentials are not settings: they come from the environment or the OS keyring (see
`flows.domain.credentials`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from companion_settings import EnvOverFile, Patterns, load_section
from companion_settings import Section as _Section
from companion_settings.folders import data_folder, note_earlier_default

_USER_ID = re.compile(r"^usr_[0-9a-fA-F-]{36}$|^[0-9A-Za-z]{10}$")
_GROUP_ID = re.compile(r"^grp_[0-9a-fA-F-]{36}$")

EARLIER_DEFAULT_DIR = Path("data")
"""Where the flows kept their files by default before the platform's data folder (the working directory's
`data`), and the files that show it was used."""
_EARLIER_FILES = ("friend_ledger.sqlite3", "vrchat_session.json", "login_blocked.json")


def default_data_dir() -> Path:
    """The flows' folder when `flows.data_dir` is not set: `flows` in the platform's data folder (see
    :mod:`companion_settings.folders`), whatever the working directory (served runs start elsewhere)."""
    return data_folder() / "flows"


class VRChatSettings(_Section):
    """How the gateway talks to the VRChat API."""

    base_url: str = Field("https://api.vrchat.cloud/api/1", pattern=r"^https?://")
    user_agent: str = Field(
        "vrchat-companion/0.1.0 https://github.com/vrchat-companion/vrchat-companion", min_length=5
    )
    connect_timeout_s: float = Field(5.0, gt=0.0, le=60.0)
    read_timeout_s: float = Field(15.0, gt=0.0, le=300.0)
    max_attempts: int = Field(4, ge=1, le=10)
    backoff_base_s: float = Field(2.0, ge=0.0, le=60.0)
    backoff_max_s: float = Field(120.0, ge=0.0, le=3600.0)
    backoff_jitter: float = Field(0.25, ge=0.0, le=1.0)
    cookie_store: Literal["file", "keyring"] = "file"
    page_size: int = Field(100, ge=1, le=100)
    pipeline_url: str = Field("wss://pipeline.vrchat.cloud/", pattern=r"^wss?://")

    @field_validator("user_agent")
    @classmethod
    def _name_version_contact(cls, value: str) -> str:
        if not re.fullmatch(r"[\w.-]+/[\w.+-]+ \S+", value):
            raise ValueError('must read "name/version contact", e.g. "my-bot/1.0 me@example.com"')
        return value


class ScreeningSettings(_Section):
    """Which senders are accepted as friends."""

    min_account_age_days: int = Field(14, ge=0, le=3650)
    blocked_tags: tuple[str, ...] = ("system_probable_troll", "system_troll")
    required_any_tags: tuple[str, ...] = ("system_trust_basic",)
    blocklist: tuple[str, ...] = ()
    allowlist: tuple[str, ...] = ()
    blocked_name_patterns: Patterns = ()

    @field_validator("blocklist", "allowlist")
    @classmethod
    def _user_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        wrong = [item for item in value if not _USER_ID.match(item)]
        if wrong:
            raise ValueError(f"not VRChat user ids (usr_ followed by a UUID): {wrong}")
        return value


class FriendRequestSettings(_Section):
    """How friend requests are accepted and rejected."""

    accept_limit: int = Field(10, ge=1, le=100)
    accept_window_s: float = Field(60.0, gt=0.0, le=3600.0)
    rejected_action: Literal["hide", "leave"] = "hide"
    max_requests_per_run: int = Field(200, ge=1, le=10000)
    max_consecutive_failures: int = Field(3, ge=1, le=100)


class ListenSettings(_Section):
    """The pipeline listener: friend requests heard as they arrive start a friend-requests run."""

    enabled: bool = True
    debounce_s: float = Field(3.0, ge=0.0, le=300.0)
    reconnect_initial_s: float = Field(2.0, gt=0.0, le=300.0)
    reconnect_max_s: float = Field(300.0, gt=0.0, le=3600.0)


class GroupSettings(_Section):
    """The group each new friend is invited to, once."""

    group_id: str | None = None
    confirm_override_block: bool = False

    @field_validator("group_id")
    @classmethod
    def _group_id(cls, value: str | None) -> str | None:
        if value is not None and not _GROUP_ID.match(value):
            raise ValueError("must be a VRChat group id: grp_ followed by a UUID (or null for no invites)")
        return value


class FlowsSettings(EnvOverFile):
    """Everything the VRChat flows read from the `flows` section."""

    model_config = SettingsConfigDict(
        env_prefix="FLOWS_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    """The ledger, the saved session and the login block; null (the default) = `flows` in the platform's
    data folder."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    busy_wait_s: float = Field(30.0, ge=0.0, le=3600.0)
    """How long a run waits for another friend-requests or group-invites run to finish before it skips."""
    vrchat: VRChatSettings = VRChatSettings()
    screening: ScreeningSettings = ScreeningSettings()
    friend_requests: FriendRequestSettings = FriendRequestSettings()
    group: GroupSettings = GroupSettings()
    listen: ListenSettings = ListenSettings()

    @field_validator("data_dir", mode="before")
    @classmethod
    def _platform_folder_when_null(cls, value: object) -> object:
        return default_data_dir() if value is None else value

    @property
    def ledger_path(self) -> Path:
        """The SQLite ledger of decisions, accepts and invites."""
        return self.data_dir / "friend_ledger.sqlite3"

    @property
    def cookie_path(self) -> Path:
        """The file the session cookies are kept in when `vrchat.cookie_store` is "file"."""
        return self.data_dir / "vrchat_session.json"


def load_settings(explicit: Path | None = None) -> FlowsSettings:
    """Read and validate the `flows` section; a relative `data_dir` is taken from the working directory, and
    no `data_dir` means the platform's data folder."""
    settings, _ = load_section(FlowsSettings, "flows", explicit)
    return settings


def note_earlier_files(settings: FlowsSettings) -> None:
    """When the default folder is used and does not exist yet, point out the ledger, session or login block
    that an earlier version left in the working directory's data/ (they are not read from there)."""
    if settings.data_dir == default_data_dir():
        note_earlier_default(EARLIER_DEFAULT_DIR, settings.data_dir, "flows.data_dir", _EARLIER_FILES)
