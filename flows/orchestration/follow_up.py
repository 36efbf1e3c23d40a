"""A run that skipped leaves one more run behind, so that what it would have done is done as soon as the
social slot frees.

A skipped run (another friend-requests or group-invites run holds the slot, :mod:`.exclusive`) used to
leave its work to the holder or to the next scheduled run, up to 30 minutes later. But the holder may be
a run that was killed (its lease keeps the slot up to `LEASE_S`), or a long batch that collected its
requests before this one arrived. So a skipped deployment run asks for one more run of its deployment,
now, that waits for the slot as long as a lease can outlive its holder: it starts within seconds of the
slot freeing. A skip that finds such a follow-up still waiting to start leaves it at that (a burst of
pushes leaves one); runs that skip at the same moment ask with the same idempotency key (per lease
period), so that they too leave one.
"""

from __future__ import annotations

import logging
import time
from uuid import UUID

from prefect import runtime
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment

from flows.orchestration.exclusive import LEASE_S

__all__ = ["FOLLOW_UP_WAIT_S", "run_again_when_free"]

log = logging.getLogger(__name__)

FOLLOW_UP_WAIT_S = LEASE_S + 15.0
"""How long a follow-up run waits for the slot: a killed holder's lease runs out before that."""
FOLLOW_UP = {"start_jitter_s": 0.0, "slot_wait_s": FOLLOW_UP_WAIT_S}
"""A follow-up's parameters (a scheduled run of the deployment has the defaults)."""


def run_again_when_free() -> str | None:
    """Ask for one more run of this run's deployment, waiting up to `FOLLOW_UP_WAIT_S` for the slot (or
    leave one already asked for that has not started); returns its id (None outside a deployment run:
    nothing would pick it up)."""
    deployment = runtime.deployment.id
    if not deployment:
        return None
    waiting = _waiting_follow_up(UUID(str(deployment)))
    if waiting is not None:
        log.warning("a follow-up run (%s) already waits to take the slot as soon as it frees", waiting)
        return waiting
    follow_up = run_deployment(
        name=deployment,
        parameters=FOLLOW_UP,
        timeout=0,
        as_subflow=False,
        idempotency_key=f"after-skip-{deployment}-{lease_period()}",
    )
    if not isinstance(follow_up, FlowRun):  # only from async callers
        raise TypeError("run_again_when_free() must be called outside an event loop")
    log.warning(
        "a follow-up run (%s) takes the slot as soon as it frees (within %.0f s)",
        follow_up.id,
        FOLLOW_UP_WAIT_S,
    )
    return str(follow_up.id)


def lease_period() -> int:
    """The number of the lease period we are in (runs that skip at the same moment share it)."""
    return int(time.time() // LEASE_S)


def _waiting_follow_up(deployment: UUID) -> str | None:
    """A follow-up of `deployment` that has not started yet (scheduled or pending), if there is one."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING])
                )
            ),
        )
    return next((str(run.id) for run in runs if run.parameters == FOLLOW_UP), None)
