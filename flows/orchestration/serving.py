"""`python -m flows serve`: serve the deployments of `prefect.yaml`, with the social slot, crash detection
and (unless turned off) the pipeline listener beside them."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from prefect import serve

from flows.domain.settings import load_settings
from flows.orchestration.deployments import read_deployments, runner_deployments
from flows.orchestration.exclusive import SOCIAL_LIMIT, ensure_social_limit
from flows.orchestration.pipeline_events import listen
from flows.orchestration.zombies import HEARTBEAT_S, ensure_crash_detection

__all__ = ["POLL_S", "serve_deployments"]

log = logging.getLogger(__name__)

POLL_S = 2.0
"""How often the served runner asks the server for runs to start. Prefect's default (10 s) added up to
10 s to every event-triggered run on top of the automation's own delay: a friend request heard on the
pipeline was accepted after 15.03 s in one CI run (promised: within 15 s)."""


def serve_deployments(prefect_yaml: Path, limit: int | None, listen_to_pipeline: bool) -> int:
    """Serve every deployment `prefect_yaml` lists until interrupted (exit status 1 when it lists none)."""
    # Served runs start as new processes: with this, our own loggers ("flows.*") reach the Prefect UI too.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "flows")
    # ... and they send a heartbeat every minute, so that a killed one is marked Crashed (zombies.py)
    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_S))
    deployments = runner_deployments(read_deployments(prefect_yaml))
    if not deployments:
        log.error("no deployment to serve in %s", prefect_yaml)
        return 1
    ensure_social_limit()
    log.info("friend-requests and group-invites take turns (global concurrency limit '%s')", SOCIAL_LIMIT)
    ensure_crash_detection()
    settings = load_settings()
    stop = threading.Event()
    if settings.listen.enabled and listen_to_pipeline:
        threading.Thread(target=listen, args=(settings, stop), name="pipeline", daemon=True).start()
    try:
        serve(*deployments, limit=limit, query_seconds=POLL_S)
    finally:
        stop.set()
    return 0
