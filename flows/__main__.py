"""Command line of the VRChat flows.

python -m flows serve                      serve the deployments of prefect.yaml (PREFECT_API_URL), and
                                           listen to VRChat's pipeline for friend requests as they arrive
python -m flows listen                     only listen to the pipeline (the deployments served elsewhere)
python -m flows run friend-requests        one run now, without a schedule
python -m flows run group-invites
python -m flows check-deployments          validate prefect.yaml and the flows it names
python -m flows login                      an interactive login (asks for an email code if VRChat does)
python -m flows unblock-login              allow password logins again after fixing what blocked them
"""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import threading
from pathlib import Path

from companion_settings import ConfigError
from flows.composition import login_block, open_batch
from flows.domain.errors import EmailCodeRequiredError, VRChatError
from flows.domain.settings import load_settings
from flows.orchestration.deployments import PREFECT_YAML, read_deployments, runner_deployments
from flows.orchestration.friend_requests import friend_requests
from flows.orchestration.group_invites import group_invites
from flows.orchestration.pipeline_events import listen
from flows.orchestration.serving import interrupt, serve_deployments


def _ctrl_break_stops() -> None:
    """Ctrl-Break (Windows) stops `serve` and `listen` as Ctrl-C does, by raising KeyboardInterrupt (within
    `flows.orchestration.serving.STOP_S`), instead of ending the process at once; where there is no
    SIGBREAK, nothing changes."""
    ctrl_break = getattr(signal, "SIGBREAK", None)
    if ctrl_break is not None and threading.current_thread() is threading.main_thread():
        signal.signal(ctrl_break, interrupt)


def _serve(args: argparse.Namespace) -> int:
    _ctrl_break_stops()
    return serve_deployments(args.prefect_yaml, args.limit, listen_to_pipeline=not args.no_listen)


def _listen(_args: argparse.Namespace) -> int:
    _ctrl_break_stops()
    stop = threading.Event()
    try:
        listen(load_settings(), stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def _run(args: argparse.Namespace) -> int:
    flow = friend_requests if args.flow == "friend-requests" else group_invites
    summary = flow(start_jitter_s=0.0)
    print(summary.markdown(args.flow))
    return 0


def _check(args: argparse.Namespace) -> int:
    specs = read_deployments(args.prefect_yaml)
    served = runner_deployments(specs)
    for deployment in served:
        print(
            f"ok: {deployment.name} ({deployment.entrypoint}), {len(deployment.schedules or [])} schedule(s)"
        )
    return 0 if len(served) == len(specs) else 1


def _login(_args: argparse.Namespace) -> int:
    settings = load_settings()
    login_block(settings).clear()
    with open_batch(settings) as batch:
        try:
            signed_in = batch.gateway.sign_in()
        except EmailCodeRequiredError:
            batch.gateway.verify_email_code(
                getpass.getpass("VRChat sent a code by email; type it here: ").strip()
            )
            login_block(settings).clear()
            print("signed in; the session is saved for the scheduled runs")
            return 0
    print(f"signed in as {signed_in.user_id} (saved session reused: {signed_in.reused_session})")
    return 0


def _unblock(_args: argparse.Namespace) -> int:
    login_block(load_settings()).clear()
    print("password logins are allowed again")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the subcommand."""
    parser = argparse.ArgumentParser(prog="python -m flows", description="VRChat friend-request flows")
    commands = parser.add_subparsers(dest="command", required=True)
    served = commands.add_parser("serve", help="serve the deployments of prefect.yaml")
    served.add_argument("--limit", type=int, default=None, help="at most this many runs at once")
    served.add_argument("--prefect-yaml", type=Path, default=PREFECT_YAML)
    served.add_argument("--no-listen", action="store_true", help="scheduled runs only (no pipeline)")
    served.set_defaults(handler=_serve)
    commands.add_parser("listen", help="listen to VRChat's pipeline only").set_defaults(handler=_listen)
    run = commands.add_parser("run", help="one run now")
    run.add_argument("flow", choices=["friend-requests", "group-invites"])
    run.set_defaults(handler=_run)
    check = commands.add_parser("check-deployments", help="validate prefect.yaml and the flows it names")
    check.add_argument("--prefect-yaml", type=Path, default=PREFECT_YAML)
    check.set_defaults(handler=_check)
    commands.add_parser("login", help="interactive login").set_defaults(handler=_login)
    commands.add_parser("unblock-login", help="allow password logins again").set_defaults(handler=_unblock)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except VRChatError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(main())
