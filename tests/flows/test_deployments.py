"""The deployments in prefect.yaml are valid (Prefect's own models, the flows import, their parameters
validate, `to_deployment` accepts them) and their schedules do not tick on fixed clock minutes."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from flows.__main__ import main
from flows.domain.friend_requests import process_friend_requests
from flows.domain.group_invites import invite_open_invites
from flows.orchestration.deployments import PREFECT_YAML, read_deployments, runner_deployments


def test_prefect_yaml_lists_valid_deployments_of_every_flow() -> None:
    specs = read_deployments()
    assert {spec.name for spec in specs} == {"friend-requests", "group-invites", "session-expiry"}
    served = runner_deployments(specs)
    assert [deployment.name for deployment in served] == [spec.name for spec in specs]
    assert {deployment.flow_name for deployment in served} == {
        "friend-requests",
        "group-invites",
        "session-expiry",
    }


def test_schedules_are_jittered_not_on_the_clock() -> None:
    for spec in read_deployments():
        assert spec.parameters["start_jitter_s"] > 0, spec.name
        assert len(spec.schedules) == 1
        schedule = spec.schedules[0]
        assert schedule.interval is not None and schedule.interval % timedelta(minutes=1) != timedelta(0)
        assert schedule.anchor_date.second != 0, spec.name


def test_the_check_command_accepts_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-deployments"]) == 0
    assert capsys.readouterr().out.count("ok: ") == 3


def test_a_broken_deployment_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "prefect.yaml"
    broken.write_text(
        "deployments:\n  - name: friend-requests\n"
        "    entrypoint: flows/orchestration/friend_requests.py:friend_requests\n"
        "    schedules:\n      - interval: 300\n        cron: '* * * * *'\n"
    )
    with pytest.raises(ValueError, match="interval"):
        read_deployments(broken)


def test_warnings_of_a_served_flow_reach_the_flows_logger(caplog: pytest.LogCaptureFixture) -> None:
    """A served run loads the entrypoint file under another module name; its warnings ("request … left
    open") must still come from a `flows.*` logger, the one PREFECT_LOGGING_EXTRA_LOGGERS sends to the UI.
    The "left open" warnings are written by the domain's passes, which the entrypoint imports by name; an
    entrypoint module that has a logger of its own is checked too."""
    loggers = {
        "friend-requests": process_friend_requests.__globals__["log"],
        "group-invites": invite_open_invites.__globals__["log"],
    }
    for spec in read_deployments():
        flow_globals = spec.load_flow().fn.__globals__
        module_log = flow_globals.get("log")
        if isinstance(module_log, logging.Logger):
            loggers[f"{spec.name} (entrypoint)"] = module_log
    for name, module_log in loggers.items():
        assert isinstance(module_log, logging.Logger), name
        with caplog.at_level(logging.WARNING, logger="flows"):
            module_log.warning("left open: %s", name)
        assert any(
            record.name.startswith("flows.") and record.getMessage() == f"left open: {name}"
            for record in caplog.records
        ), f"{name} logs as {module_log.name!r}, outside the 'flows' loggers"


def test_the_served_runner_asks_for_new_runs_every_two_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """An event-triggered run waits for the runner's next poll: Prefect's 10 s default made a friend
    request heard on the pipeline take 15.03 s (CI), past the promised 15 s."""
    from flows.orchestration import serving

    given: dict[str, object] = {}
    monkeypatch.setattr(serving, "ensure_social_limit", lambda: None)
    monkeypatch.setattr(serving, "ensure_crash_detection", lambda: None)

    class Runner:
        def __init__(self, **options: object) -> None:
            given.update(options)

        def add_deployment(self, deployment: object) -> None:
            given.setdefault("deployments", 0)
            given["deployments"] = int(str(given["deployments"])) + 1

        async def start(self) -> None:
            given["started"] = True

    monkeypatch.setattr(serving, "_BoundedStopRunner", Runner)
    assert serving.serve_deployments(PREFECT_YAML, limit=None, listen_to_pipeline=False) == 0
    assert given["query_seconds"] == serving.POLL_S <= 2.0
    assert given["started"] and given["deployments"] == 3
