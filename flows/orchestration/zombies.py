"""Runs killed without a goodbye are marked Crashed, not left "Running" forever.

A flow run sends Prefect a heartbeat event every `HEARTBEAT_S` seconds while it runs (Prefect's own
`flows.heartbeat_frequency`, which `python -m flows serve` sets). The automation created here (Prefect's
documented zombie detection) watches every flow run that sent one: when neither another heartbeat nor a
final state follows within `SILENCE_S`, it sets the run to Crashed. A run killed with SIGKILL, or on a
machine that lost power, shows as Crashed in the UI a few minutes later; its ledger lets the next run
finish its work.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

__all__ = ["AUTOMATION", "HEARTBEAT_S", "SILENCE_S", "ensure_crash_detection"]

log = logging.getLogger(__name__)

AUTOMATION = "crash-silent-flow-runs"
HEARTBEAT_S = 60
"""Seconds between a running flow's heartbeats (Prefect's minimum is 30)."""
SILENCE_S = 3 * HEARTBEAT_S + 30
"""A run silent this long (three heartbeats missed, with slack) is marked Crashed."""

_FINAL = ("Completed", "Failed", "Cancelled", "Crashed")


def ensure_crash_detection(silence_s: float = SILENCE_S) -> None:
    """Create the zombie-detection automation, or bring an existing one to `silence_s` (idempotent)."""
    automation = AutomationCore(
        name=AUTOMATION,
        description="Marks a flow run Crashed when its heartbeats stop without a final state",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{state}" for state in _FINAL)},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=silence_s),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {silence_s:.0f} s: the run's process was killed or lost",
            )
        ],
    )
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(AUTOMATION)
        if not existing:
            client.create_automation(automation)
            log.info("created the automation '%s' (silent runs crash after %.0f s)", AUTOMATION, silence_s)
        elif existing[0].trigger != automation.trigger or existing[0].actions != automation.actions:
            client.update_automation(existing[0].id, automation)
