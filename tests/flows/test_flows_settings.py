"""The `flows` section: defaults from conf/default.yaml, environment overrides, clear errors."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from prefect.settings import Settings

from companion_settings import ConfigError
from flows.domain.settings import default_data_dir, load_settings


def test_the_shipped_file_loads_with_the_documented_defaults() -> None:
    settings = load_settings()
    assert settings.friend_requests.accept_limit == 10 and settings.friend_requests.accept_window_s == 60.0
    assert settings.vrchat.cookie_store == "file" and settings.data_dir == default_data_dir()
    assert "system_probable_troll" in settings.screening.blocked_tags
    assert settings.group.group_id is None


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWS_FRIEND_REQUESTS__ACCEPT_LIMIT", "5")
    monkeypatch.setenv("FLOWS_GROUP__GROUP_ID", "grp_71a7ff59-112c-4e78-a990-c7cc650776e5")
    settings = load_settings()
    assert settings.friend_requests.accept_limit == 5
    assert settings.group.group_id == "grp_71a7ff59-112c-4e78-a990-c7cc650776e5"


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("flows:\n  friend_requests:\n    accept_limit: 0\n", "flows.friend_requests.accept_limit"),
        ("flows:\n  vrchat:\n    user_agent: my bot\n", "name/version contact"),
        ("flows:\n  group:\n    group_id: mygroup\n", "flows.group.group_id"),
        ("flows:\n  screening:\n    blocklist: [bob]\n", "not VRChat user ids"),
        ("flows:\n  screening:\n    blocked_name_patterns: ['(']\n", "not a valid regular expression"),
        ("flows:\n  vrchat:\n    password: hunter2\n", "flows.vrchat.password"),
    ],
)
def test_a_wrong_value_is_named(tmp_path: Path, yaml_text: str, named: str) -> None:
    config = tmp_path / "companion.yaml"
    config.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError, match=named.replace(".", r"\.").replace("(", r"\(")):
        load_settings(config)


def test_a_prefect_server_started_here_deletes_old_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """`prefect server start` in the project folder reads pyproject.toml's [tool.prefect]: finished flow
    runs (with their logs and artifacts) and events are deleted after a week, so the server's database
    does not grow for ever (Prefect's default deletes events only)."""
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    for name in [name for name in os.environ if name.startswith("PREFECT_SERVER_SERVICES_DB_VACUUM")]:
        monkeypatch.delenv(name)
    vacuum = Settings().server.services.db_vacuum
    assert {"flow_runs", "events"} <= vacuum.enabled_vacuum_types
    assert vacuum.retention_period <= timedelta(days=7)
