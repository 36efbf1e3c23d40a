"""A run that skipped leaves one more run behind, so that what it would have done is done as soon as the
social slot frees.

A skipped run (another friend-requests or group-invites run holds the slot, :mod:`.exclusive`) used to
leave its work to the holder or to the next scheduled run, up to 30 minutes later. But the holder may be
a run that was killed (its lease keeps the slot up to `LEASE_S`), or a long batch that collected its
requests before this one arrived. So a skipped deployment run asks for one more run of its deployment,
now, that waits for the slot as long as a lease can outlive its holder: it starts within seconds of the
slot freeing. Runs that skip within the same lease period ask for the same follow-up (an idempotency
key), so a burst of pushes leaves one, and a slot held for long leaves one every lease period.
"""

from __future__ import annotations

import logging
import time

from prefect import runtime
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from flows.orchestration.exclusive import LEASE_S

__all__ = ["FOLLOW_UP_WAIT_S", "run_again_when_free"]

log = logging.getLogger(__name__)

FOLLOW_UP_WAIT_S = LEASE_S + 15.0
"""How long a follow-up run waits for the slot: a killed holder's lease runs out before that."""


def run_again_when_free() -> str | None:
    """Ask for one more run of this run's deployment, waiting up to `FOLLOW_UP_WAIT_S` for the slot;
    returns its id (None outside a deployment run: nothing would pick it up)."""
    deployment = runtime.deployment.id
    if not deployment:
        return None
    follow_up = run_deployment(
        name=deployment,
        parameters={"start_jitter_s": 0.0, "slot_wait_s": FOLLOW_UP_WAIT_S},
        timeout=0,
        as_subflow=False,
        idempotency_key=f"after-skip-{deployment}-{int(time.time() // LEASE_S)}",
    )
    if not isinstance(follow_up, FlowRun):  # only from async callers
        raise TypeError("run_again_when_free() must be called outside an event loop")
    log.warning(
        "a follow-up run (%s) takes the slot as soon as it frees (within %.0f s)",
        follow_up.id,
        FOLLOW_UP_WAIT_S,
    )
    return str(follow_up.id)
