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
from flows.orchestration.follow_up import run_again_when_free
from flows.orchestration.summary_artifact import publish_summary

__all__ = ["run_scheduled"]


def run_scheduled(
    work: Callable[[FriendRequestBatch], BatchSummary],
    start_jitter_s: float,
    key: str,
    title: str,
    slot_wait_s: float | None = None,
) -> BatchSummary:
    """Wait a random 0..`start_jitter_s` seconds (VRChat asks clients not to poll on fixed clock ticks),
    take the social runs' one slot (:mod:`flows.orchestration.exclusive`), open a batch from the
    configuration, run `work`, and publish its summary (artifact `key`). A run that stops early (VRChat
    unavailable, failures in a row, a login problem) publishes what it did and why it stopped before the
    error ends it; a run that finds another one working (for `slot_wait_s`, default `flows.busy_wait_s`)
    skips, says so, and leaves a follow-up run that takes the slot as soon as it frees
    (:mod:`flows.orchestration.follow_up`)."""
    clock = SystemClock()
    clock.sleep(random.uniform(0.0, start_jitter_s))
    settings = load_settings()
    with social_slot(settings.busy_wait_s if slot_wait_s is None else slot_wait_s) as held:
        if not held:
            follow_up = run_again_when_free()
            skipped = BatchSummary(
                {},
                (),
                (),
                outcome="skipped: another friend-requests or group-invites run was working"
                + (f"; follow-up run {follow_up} starts when it is done" if follow_up else ""),
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
