"""One social run at a time: friend-requests and group-invites share a global concurrency limit of one.

A friend-request batch of 200 takes 20 minutes at 10 accepts a minute, its schedule fires every ~5 minutes,
and group-invites runs beside it: two runs working the same ledger would accept or invite someone twice.
Every run takes the limit's only slot before it opens the ledger; a run that cannot get it within
`flows.busy_wait_s` ends at once, completed, and says so (the run that holds the slot, or the next one,
does the work). The slot is a lease that the holder renews: a run killed without a goodbye frees it when
its lease runs out (`LEASE_S`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists

__all__ = ["LEASE_S", "SOCIAL_LIMIT", "ensure_social_limit", "social_slot"]

log = logging.getLogger(__name__)

SOCIAL_LIMIT = "vrchat-social"
"""The global concurrency limit (one slot) both flows take."""
LEASE_S = 120.0
"""How long a slot stays taken after its holder stopped renewing it (killed)."""


class _SkipIsNoError(logging.Filter):
    """Drops Prefect's "Service 'ConcurrencySlotAcquisitionWithLeaseService' failed to process item" ERROR
    when the failure is the wait for the slot running out: that is a normal skip, which `social_slot`
    reports as a warning. The record carries no exception, so the one being handled is looked at (the
    service logs from inside its `except`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        skipped = isinstance(sys.exc_info()[1], TimeoutError)
        return not (skipped and "ConcurrencySlotAcquisition" in record.getMessage())


def _quiet_normal_skips() -> None:
    prefect_log = logging.getLogger("prefect._internal.concurrency")
    if not any(isinstance(f, _SkipIsNoError) for f in prefect_log.filters):
        prefect_log.addFilter(_SkipIsNoError())


def ensure_social_limit() -> None:
    """Create the limit with one slot, or set an existing one back to one (idempotent)."""
    # ObjectAlreadyExists: created by a run that started at the same moment
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.upsert_global_concurrency_limit_by_name(SOCIAL_LIMIT, 1)


@contextmanager
def social_slot(wait_s: float) -> Iterator[bool]:
    """Hold the only slot of the social limit for the block: yields True, or False (holding nothing) when
    another run held it for `wait_s` seconds."""
    ensure_social_limit()
    _quiet_normal_skips()
    with ExitStack() as held:
        try:
            held.enter_context(
                concurrency(SOCIAL_LIMIT, timeout_seconds=wait_s, strict=True, lease_duration=LEASE_S)
            )
        except TimeoutError:
            log.warning(
                "another friend-requests or group-invites run is working (concurrency limit '%s'); this "
                "run skips, and the next one picks up what is left",
                SOCIAL_LIMIT,
            )
            yield False
            return
        yield True
