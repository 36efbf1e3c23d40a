"""What a scheduled flow does around its work: jitter, the social slot, a batch, the summary artifact."""

from __future__ import annotations

import random
from collections.abc import Callable

from flows.composition import open_batch
from flows.domain.batch import FriendRequestBatch
from flows.domain.clock import SystemClock
from flows.domain.errors import VRChatError
from flows.domain.settings import load_settings
from flows.domain.summary import BatchSummary, summarize
from flows.orchestration.exclusive import social_slot
from flows.orchestration.summary_artifact import publish_summary

__all__ = ["run_scheduled"]


def run_scheduled(
    work: Callable[[FriendRequestBatch], BatchSummary], start_jitter_s: float, key: str, title: str
) -> BatchSummary:
    """Wait a random 0..`start_jitter_s` seconds (VRChat asks clients not to poll on fixed clock ticks),
    take the social runs' one slot (:mod:`flows.orchestration.exclusive`), open a batch from the
    configuration, run `work`, and publish its summary (artifact `key`). A run that stops early (VRChat
    unavailable, failures in a row, a login problem) publishes what it did and why it stopped before the
    error ends it; a run that finds another one working skips and says so."""
    clock = SystemClock()
    clock.sleep(random.uniform(0.0, start_jitter_s))
    settings = load_settings()
    with social_slot(settings.busy_wait_s) as held:
        if not held:
            skipped = BatchSummary(
                {}, (), (), outcome="skipped: another friend-requests or group-invites run was working"
            )
            publish_summary(skipped, key, title)
            return skipped
        with open_batch(settings, clock) as batch:
            started = clock.now()
            try:
                summary = work(batch)
            except VRChatError as exc:
                publish_summary(summarize(batch.ledger, started, f"stopped: {exc}"), key, title)
                raise
            publish_summary(summary, key, title)
            return summary
