"""Friend requests heard on VRChat's pipeline (:mod:`flows.vrchat.pipeline`) become Prefect events.

Each burst of friend requests becomes one event, `vrchat.friend-request.received` (resource
`vrchat.pipeline`). The friend-requests deployment has a trigger on that event in `prefect.yaml`, so a
request is handled seconds after it is sent, by the same flow, budget, ledger and concurrency slot as a
scheduled run (which stays, slower, as the fallback). The listener signs in with the flows' own session,
the way a run does.
"""

from __future__ import annotations

import threading

from prefect.events import emit_event

from flows.composition import open_batch, session_store
from flows.domain.errors import LoginFailedError
from flows.domain.settings import FlowsSettings
from flows.vrchat.pipeline import PipelineListener

__all__ = ["EVENT", "RESOURCE", "listen"]

EVENT = "vrchat.friend-request.received"
RESOURCE = "vrchat.pipeline"


def listen(settings: FlowsSettings, stop: threading.Event) -> None:
    """Listen to the pipeline with the flows' own session, and emit the Prefect events, until `stop`."""
    store = session_store(settings)

    def sign_in() -> str:
        with open_batch(settings) as batch:
            batch.gateway.sign_in()
        saved = store.load()
        if saved is None:
            raise LoginFailedError("signed in, but no session was saved for the pipeline")
        return saved.auth

    def emit(notification_ids: list[str]) -> None:
        emit_event(
            event=EVENT,
            resource={"prefect.resource.id": RESOURCE, "prefect.resource.name": "VRChat pipeline"},
            payload={"friend_requests": len(notification_ids)},
        )

    PipelineListener(settings, sign_in, store.clear, emit, stop).run()
