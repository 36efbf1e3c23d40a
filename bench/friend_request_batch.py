"""Benchmark of the friend-request flow against the local fake VRChat (no network, no rate-limit sleeping:
the rate window runs on an injected clock, so the figures are the flow's own cost).

    .venv/bin/python bench/friend_request_batch.py [--sizes 35 200] [--prefect] [--faults]

Prints a table and writes bench/results/friend_request_batch.json. `--prefect` also runs the batches
through the Prefect tasks (an ephemeral Prefect API; its ~10 s start is not counted). `--faults` also
runs them with 429s and 500s on the accepts (runs stopped by failures in a row are followed by the next
run, as the schedule would): "most in 60 s" counts the accept requests VRChat saw, retries included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "flows"))

from fake_vrchat import Fault  # noqa: E402
from flow_harness import SCREENING, FakeClock, FakeSecrets, populate, settings_for, totp_fake  # noqa: E402
from prefect import flow  # noqa: E402

from flows.composition import open_batch  # noqa: E402
from flows.domain.batch import BatchSteps  # noqa: E402
from flows.domain.errors import VRChatUnavailableError  # noqa: E402
from flows.domain.friend_requests import process_friend_requests  # noqa: E402
from flows.domain.steps import PLAIN_STEPS  # noqa: E402
from flows.orchestration.tasks import PREFECT_STEPS  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "friend_request_batch.json"


ACCEPT = r"/auth/user/notifications/.*/accept"
FAULTS = [("429", 1, "30"), ("500", 9, None), ("429", 2, "1"), ("500", 8, None)]
"""With --faults: a 429 asking for 30 s, nine 500s, two short 429s and eight more 500s on the accepts."""


def _batch(
    size: int, steps: BatchSteps, secrets: FakeSecrets, under_prefect: bool, faults: bool = False
) -> dict[str, Any]:
    clock = FakeClock()
    with (
        totp_fake(secrets, clock) as fake,
        tempfile.TemporaryDirectory() as folder,
    ):
        world = populate(fake, valid=size * 2 // 3, abusive=size - size * 2 // 3)
        for kind, times, retry_after in FAULTS if faults else []:
            fake.inject(Fault("PUT", ACCEPT, kind, times=times, retry_after=retry_after))  # type: ignore[arg-type]
        settings = settings_for(
            fake, Path(folder), screening=SCREENING, friend_requests={"max_requests_per_run": 10000}
        )

        def run() -> None:
            with open_batch(settings, clock, credentials=secrets.credentials) as batch:
                process_friend_requests(batch, steps)

        started = time.perf_counter()
        runs = 0
        while fake.friends != {user.id for user in world.valid} and runs < 20:
            runs += 1  # a run stopped by failures in a row is followed by the next one
            with contextlib.suppress(VRChatUnavailableError):
                flow(name="bench-friend-requests")(run)() if under_prefect else run()
        elapsed = time.perf_counter() - started
        assert fake.friends == {user.id for user in world.valid}
        on_the_wire = [r.at for r in fake.requests if r.method == "PUT" and re.fullmatch(ACCEPT, r.path)]
        return {
            "requests": size,
            "runs": runs,
            "wire_requests": len(fake.requests),
            "accepts_on_the_wire": len(on_the_wire),
            "most_accepts_in_60_s": max(sum(1 for t in on_the_wire if s - 60 < t <= s) for s in on_the_wire),
            "seconds": round(elapsed, 3),
            "ms_per_request": round(1000 * elapsed / size, 2),
            "simulated_minutes": round((clock.now() - FakeClock().now()) / 60, 1),
        }


def _sign_in_latency(secrets: FakeSecrets, runs: int) -> dict[str, float]:
    with (
        totp_fake(secrets) as fake,
        tempfile.TemporaryDirectory() as folder,
    ):
        settings = settings_for(fake, Path(folder))
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            with open_batch(settings, FakeClock(), credentials=secrets.credentials) as batch:
                batch.gateway.sign_in()
            times.append(1000 * (time.perf_counter() - started))
        return {
            "first_login_ms": round(times[0], 2),
            "reused_session_p50_ms": round(statistics.median(times[1:]), 2),
            "password_logins": fake.password_logins,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[35, 200])
    parser.add_argument("--prefect", action="store_true", help="also run through the Prefect tasks")
    parser.add_argument("--faults", action="store_true", help="also run with 429s and 500s on the accepts")
    args = parser.parse_args()
    secrets = FakeSecrets.generate()
    rows = [{"mode": "plain", **_batch(size, PLAIN_STEPS, secrets, False)} for size in args.sizes]
    if args.faults:
        rows += [{"mode": "faults", **_batch(size, PLAIN_STEPS, secrets, False, True)} for size in args.sizes]
    if args.prefect:
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=120):
            rows += [{"mode": "prefect", **_batch(size, PREFECT_STEPS, secrets, True)} for size in args.sizes]
    sign_in = _sign_in_latency(secrets, 50)
    print(
        f"{'mode':8} {'requests':>8} {'runs':>4} {'wire':>6} {'accepts sent':>12} {'most in 60 s':>12} "
        f"{'seconds':>8} {'ms/request':>10} {'simulated min':>13}"
    )
    for row in rows:
        print(
            f"{row['mode']:8} {row['requests']:>8} {row['runs']:>4} {row['wire_requests']:>6} "
            f"{row['accepts_on_the_wire']:>12} {row['most_accepts_in_60_s']:>12} {row['seconds']:>8} "
            f"{row['ms_per_request']:>10} {row['simulated_minutes']:>13}"
        )
    print(
        f"sign-in: first (password + TOTP) {sign_in['first_login_ms']} ms, "
        f"reused session p50 {sign_in['reused_session_p50_ms']} ms, "
        f"password logins {sign_in['password_logins']}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "batches": rows,
                "sign_in": sign_in,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
