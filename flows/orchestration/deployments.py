"""The deployments in `prefect.yaml`, validated with Prefect's own models and turned into served deployments.

`prefect.yaml` is the one place schedules live: `python -m flows serve` serves what it lists, and
`prefect deploy --all` can register the same deployments with a work pool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from prefect.cli.deploy._models import PrefectYamlModel, RawScheduleConfig
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.schedules import Cron, Interval, RRule, Schedule

from companion_settings import REPO_ROOT

__all__ = ["PREFECT_YAML", "DeploymentSpec", "read_deployments", "runner_deployments"]

log = logging.getLogger(__name__)

PREFECT_YAML = REPO_ROOT / "prefect.yaml"


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment of `prefect.yaml`, checked."""

    name: str
    entrypoint: str
    schedules: tuple[Schedule, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    triggers: tuple[DeploymentEventTrigger, ...] = ()
    tags: tuple[str, ...] = ()
    description: str | None = None

    @property
    def entrypoint_file(self) -> Path:
        """The flow's source file."""
        return REPO_ROOT / self.entrypoint.split(":", 1)[0]

    def load_flow(self) -> Flow[Any, Any]:
        """Import the flow the entrypoint names."""
        return load_flow_from_entrypoint(str(self.entrypoint_file) + ":" + self.entrypoint.split(":", 1)[1])


def _schedule(raw: dict[str, Any], where: str) -> Schedule:
    config = RawScheduleConfig.model_validate(raw)
    anchor = datetime.fromisoformat(config.anchor_date) if config.anchor_date else None
    if config.interval is not None:
        return Interval(
            config.interval, anchor_date=anchor, timezone=config.timezone, parameters=config.parameters
        )
    if config.cron is not None:
        return Cron(config.cron, timezone=config.timezone, parameters=config.parameters)
    if config.rrule is not None:
        return RRule(config.rrule, timezone=config.timezone, parameters=config.parameters)
    raise ValueError(f"{where}: a schedule needs one of interval, cron or rrule")


def read_deployments(path: Path = PREFECT_YAML) -> list[DeploymentSpec]:
    """Parse and validate `prefect.yaml` (Prefect's own models); errors name the deployment."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    model = PrefectYamlModel.model_validate(document)
    specs = []
    for index, deployment in enumerate(model.deployments):
        where = f"{path.name}: deployment {deployment.name or index}"
        if not deployment.name or not deployment.entrypoint or ":" not in deployment.entrypoint:
            raise ValueError(f"{where}: needs a name and an entrypoint 'path/to/file.py:flow_function'")
        raw_schedules = document["deployments"][index].get("schedules") or []
        raw_triggers = document["deployments"][index].get("triggers") or []
        tags = deployment.tags if isinstance(deployment.tags, list) else []
        specs.append(
            DeploymentSpec(
                name=deployment.name,
                entrypoint=deployment.entrypoint,
                schedules=tuple(_schedule(raw, where) for raw in raw_schedules),
                parameters=dict(deployment.parameters),
                triggers=tuple(DeploymentEventTrigger.model_validate(raw) for raw in raw_triggers),
                tags=tuple(str(tag) for tag in tags),
                description=deployment.description,
            )
        )
    return specs


def runner_deployments(specs: list[DeploymentSpec]) -> list[RunnerDeployment]:
    """Deployments ready for `prefect.serve`; a flow file that does not exist yet is skipped (warning)."""
    deployments = []
    for spec in specs:
        if not spec.entrypoint_file.exists():
            log.warning("deployment %s skipped: %s does not exist", spec.name, spec.entrypoint_file)
            continue
        flow = spec.load_flow()
        flow.validate_parameters(spec.parameters)
        deployment = flow.to_deployment(
            name=spec.name,
            schedules=list(spec.schedules),
            parameters=spec.parameters,
            triggers=list(spec.triggers),
            tags=list(spec.tags),
            description=spec.description,
        )
        if not isinstance(deployment, RunnerDeployment):  # only from async callers
            raise TypeError("runner_deployments() must be called outside an event loop")
        deployments.append(deployment)
    return deployments
