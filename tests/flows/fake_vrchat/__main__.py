"""Run the fake VRChat on its own, for trying `python -m flows serve` without touching VRChat:

    PYTHONPATH=tests/flows .venv/bin/python -m fake_vrchat --port 8765 --requests 12

It prints the environment to give the flows; a new batch of friend requests arrives every `--every` seconds.
The credentials are generated for this one run and printed, as they are fake.
"""

from __future__ import annotations

import argparse
import itertools
import secrets
import time
import uuid

from fake_vrchat.server import FakeUser, FakeVRChat

GROUP_ID = "grp_00000000-0000-4000-8000-000000000001"


def _senders(counter: itertools.count[int], count: int) -> list[FakeUser]:
    users = []
    for _ in range(count):
        n = next(counter)
        tags = ["system_trust_basic", "system_probable_troll"] if n % 5 == 4 else ["system_trust_basic"]
        users.append(FakeUser("usr_" + str(uuid.UUID(int=0x1000 + n)), f"Visitor {n}", "2021-01-01", tags))
    return users


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m fake_vrchat")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--requests", type=int, default=12, help="friend requests per batch")
    parser.add_argument("--every", type=float, default=600.0, help="seconds between batches")
    args = parser.parse_args()
    username, password = "demo-bot", secrets.token_urlsafe(12)
    fake = FakeVRChat(username=username, password=password, group_id=GROUP_ID, port=args.port)
    counter = itertools.count()
    with fake:
        print(f"export FLOWS_VRCHAT__BASE_URL={fake.url} FLOWS_GROUP__GROUP_ID={GROUP_ID}")
        print(f"export FLOWS_VRCHAT__PIPELINE_URL={fake.pipeline_url}")
        print(f"export VRCHAT_USERNAME={username} VRCHAT_PASSWORD={password}", flush=True)
        while True:
            for user in _senders(counter, args.requests):
                fake.add_notification(user)
            time.sleep(args.every)
            print(
                f"friends so far: {len(fake.friends)}, invites: {sum(fake.invite_posts.values())}", flush=True
            )


if __name__ == "__main__":
    main()
