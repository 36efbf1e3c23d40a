"""Configuration: the shipped file, environment overrides, and clear errors for wrong values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from companion_settings import CONFIG_ENV, ConfigError
from machine.settings import BUNDLED, MachineSettings, load_settings

REPO = Path(__file__).resolve().parents[1]


def write_config(tmp_path: Path, machine: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"machine": machine}), encoding="utf-8")
    (tmp_path / "persona.md").write_text("You are {bot_name}.", encoding="utf-8")
    return path


def test_default_file_lists_every_setting_with_the_model_defaults() -> None:
    document = yaml.safe_load((REPO / "conf" / "default.yaml").read_text(encoding="utf-8"))
    from_file = MachineSettings(**document["machine"]).model_dump(exclude={"persona_file"})
    assert from_file == MachineSettings().model_dump(exclude={"persona_file"})

    def keys(model: dict[str, object], prefix: str = "") -> set[str]:
        out: set[str] = set()
        for key, value in model.items():
            out |= keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
        return out

    assert keys(document["machine"]) == keys(MachineSettings().model_dump(mode="json"))


def test_defaults_use_the_bundled_models_and_the_persona(settings: MachineSettings) -> None:
    assert settings.transcriber.model == settings.chat_model.model == settings.synthesizer.voice == BUNDLED
    assert "Celeste" in settings.persona() and "{bot_name}" not in settings.persona()


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, {"bot_name": "Nova", "chat_model": {"temperature": 0.2}})
    monkeypatch.setenv("MACHINE_CHAT_MODEL__TEMPERATURE", "1.1")
    settings = load_settings(path)
    assert settings.bot_name == "Nova"
    assert settings.chat_model.temperature == 1.1
    assert settings.persona() == "You are Nova."


def test_config_named_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(write_config(tmp_path, {"bot_name": "Echo"})))
    assert load_settings().bot_name == "Echo"


@pytest.mark.parametrize(
    ("machine", "key", "allowed"),
    [
        ({"chat_model": {"temperature": 5}}, "machine.chat_model.temperature", "less than or equal to 2"),
        ({"transcriber": {"compute_type": "int4"}}, "machine.transcriber.compute_type", "'int8'"),
        ({"endpointing": {"colour": 1}}, "machine.endpointing.colour", "Extra inputs are not permitted"),
        ({"bot_name": ""}, "machine.bot_name", "at least 1 character"),
        ({"log_level": "LOUD"}, "machine.log_level", "'DEBUG'"),
        ({"synthesizer": {"backend": "espeak"}}, "machine.synthesizer.backend", "'piper' or 'coqui'"),
        ({"synthesizer": {"backend": "coqui"}}, "machine.synthesizer", "set coqui.model"),
        (
            {"synthesizer": {"coqui": {"model": "tts_models/en/ljspeech/vits", "model_path": "m.pth"}}},
            "machine.synthesizer.coqui",
            "not both",
        ),
        ({"synthesizer": {"coqui": {"model_path": "m.pth"}}}, "machine.synthesizer.coqui", "go together"),
        ({"synthesizer": {"coqui": {"device": "gpu"}}}, "machine.synthesizer.coqui.device", "pattern"),
    ],
)
def test_wrong_value_names_the_key_and_what_is_allowed(
    tmp_path: Path, machine: dict[str, object], key: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write_config(tmp_path, machine))
    message = str(error.value)
    assert key in message and allowed in message and str(tmp_path) in message


def test_wrong_environment_value_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACHINE_ENDPOINTING__START_CHUNKS", "many")
    with pytest.raises(ConfigError, match=r"machine\.endpointing\.start_chunks.*integer"):
        load_settings(write_config(tmp_path, {}))


def test_unreadable_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_settings(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("machine: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_settings(listed)


def test_missing_persona_is_reported(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"persona_file": "nowhere.md"})
    with pytest.raises(ConfigError, match=r"machine\.persona_file: cannot read .*nowhere\.md"):
        load_settings(path).persona()
