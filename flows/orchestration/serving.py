"""`python -m flows serve`: serve the deployments of `prefect.yaml`, with the social slot, crash detection
and (unless turned off) the pipeline listener beside them.

Stopping (Ctrl-C, Ctrl-Break, SIGTERM) takes at most `STOP_S`: Prefect's runner pauses the deployments'
schedules on its way out, and with the Prefect server gone its client retried that for 77 s before
`serve` ended, with a traceback. If the runner has not finished within `STOP_S`, the process leaves
without the rest of that shutdown (saying so); runs it had started finish on their own, and a run killed
meanwhile is marked Crashed by the server (:mod:`flows.orchestration.zombies`)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from prefect.exceptions import TerminationSignal
from prefect.runner import Runner

from flows.domain.settings import load_settings
from flows.orchestration.deployments import read_deployments, runner_deployments
from flows.orchestration.exclusive import SOCIAL_LIMIT, ensure_social_limit
from flows.orchestration.pipeline_events import listen
from flows.orchestration.zombies import HEARTBEAT_S, ensure_crash_detection

__all__ = ["POLL_S", "STOP_S", "serve_deployments"]

log = logging.getLogger(__name__)

POLL_S = 2.0
"""How often the served runner asks the server for runs to start. Prefect's default (10 s) added up to
10 s to every event-triggered run on top of the automation's own delay: a friend request heard on the
pipeline was accepted after 15.03 s in one CI run (promised: within 15 s)."""
STOP_S = 5.0
"""The longest `serve` takes to stop once asked, whatever is unreachable."""


def leave_within(seconds: float) -> None:
    """End the process `seconds` from now unless it has ended by then (a daemon timer; idempotent)."""
    global _leaving  # noqa: PLW0603  (one timer per process)
    if _leaving is not None:
        return

    def leave() -> None:
        log.warning(
            "stopping took longer than %.0f s (is the Prefect server reachable?); leaving without the rest "
            "of Prefect's shutdown",
            seconds,
        )
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)

    _leaving = threading.Timer(seconds, leave)
    _leaving.daemon = True
    _leaving.start()


_leaving: threading.Timer | None = None


class _BoundedStopRunner(Runner):
    """Prefect's runner, whose SIGTERM stops the process within `STOP_S`."""

    def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:
        leave_within(STOP_S)
        super().handle_sigterm(*args, **kwargs)


def interrupt(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C (and Ctrl-Break): stop within `STOP_S`, by a KeyboardInterrupt as Python's own handler does."""
    leave_within(STOP_S)
    signal.default_int_handler(signum, frame)


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
    runner = _BoundedStopRunner(limit=limit, query_seconds=POLL_S)
    for deployment in deployments:
        runner.add_deployment(deployment)
    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGINT, interrupt) if main_thread else None  # asyncio keeps our own
    try:
        asyncio.run(runner.start())
    except (KeyboardInterrupt, TerminationSignal):
        log.info("stopped")
    finally:
        stop.set()
        if main_thread and before is not None:
            signal.signal(signal.SIGINT, before)
    return 0
