"""Helpers shared by the flow tests: an injected clock, settings pointed at the fake, generated secrets,
a world of friend requests, and driving one batch without Prefect."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyotp
from fake_vrchat import FakeUser, FakeVRChat
from pydantic import SecretStr

from flows.composition import open_batch
from flows.domain.credentials import VRChatCredentials
from flows.domain.friend_requests import process_friend_requests
from flows.domain.settings import FlowsSettings
from flows.domain.steps import PLAIN_STEPS
from flows.domain.summary import BatchSummary

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TODAY = date(2026, 1, 1)
GROUP_ID = "grp_00000000-0000-4000-8000-000000000001"


class FakeClock:
    """Time that moves only when someone sleeps; records every sleep."""

    def __init__(self, start: float = START) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(seconds, 0.0)


@dataclass(frozen=True)
class FakeSecrets:
    """Fake credentials generated per test session; the leak scan searches for these exact values."""

    username: str
    password: str
    totp_secret: str

    @classmethod
    def generate(cls) -> FakeSecrets:
        return cls(
            username="bot-" + secrets.token_hex(4),
            password="pw-" + secrets.token_urlsafe(18),
            totp_secret=pyotp.random_base32(),
        )

    def credentials(self) -> VRChatCredentials:
        return VRChatCredentials(self.username, SecretStr(self.password), SecretStr(self.totp_secret))

    def needles(self) -> list[bytes]:
        """Every form a leaked secret could take: raw, and the Basic auth header value."""
        basic = base64.b64encode(f"{self.username}:{self.password}".encode())
        return [self.password.encode(), self.totp_secret.encode(), basic]


def totp_fake(secrets_: FakeSecrets, clock: FakeClock | None = None) -> FakeVRChat:
    """A fake VRChat (not started) for the bot account of `secrets_`, with TOTP two-factor authentication."""
    return FakeVRChat(
        username=secrets_.username,
        password=secrets_.password,
        totp_secret=secrets_.totp_secret,
        two_factor="totp",
        clock=clock.now if clock else FakeClock().now,
    )


def settings_for(fake: FakeVRChat, data_dir: Path, **sections: dict[str, object]) -> FlowsSettings:
    """Settings that talk to `fake` and keep data in `data_dir`; `sections` override their keys."""
    base: dict[str, dict[str, object]] = {
        "vrchat": {
            "base_url": fake.url,
            "read_timeout_s": 1.0,  # short for the hanging-socket tests, with room for a busy machine
            "connect_timeout_s": 1.0,
            "backoff_base_s": 0.5,
            "backoff_jitter": 0.0,
            "backoff_max_s": 30.0,
        },
        "group": {"group_id": GROUP_ID},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return FlowsSettings.model_validate({"data_dir": data_dir, **base})


def user_id(n: int) -> str:
    return "usr_" + str(uuid.UUID(int=0x1000 + n))


def good_user(n: int) -> FakeUser:
    return FakeUser(user_id(n), f"Friend {n}", date_joined="2021-05-01")


def abusive_users(start: int) -> list[FakeUser]:
    """One of each kind the rules reject (the last one only on the injected clock's date)."""
    return [
        FakeUser(user_id(start), "Troll", tags=["system_trust_basic", "system_probable_troll"]),
        FakeUser(user_id(start + 1), "Visitor", tags=[]),
        FakeUser(user_id(start + 2), "Spam Bot 9000", date_joined="2019-01-01"),
        FakeUser(user_id(start + 3), "Fresh Alt", date_joined=(TODAY - timedelta(days=3)).isoformat()),
    ]


@dataclass(frozen=True)
class World:
    """Who sent requests: the ones the rules should accept and the ones they should reject."""

    valid: list[FakeUser]
    abusive: list[FakeUser]


def populate(fake: FakeVRChat, valid: int, abusive: int) -> World:
    """`valid` good senders and `abusive` bad ones (cycling through the kinds), mixed, plus other noise."""
    good = [good_user(n) for n in range(valid)]
    bad = [abusive_users(1000 + 10 * n)[n % 4] for n in range(abusive)]
    mixed = sorted([*good, *bad], key=lambda user: uuid.uuid5(uuid.NAMESPACE_OID, user.id))
    for user in mixed:
        fake.add_notification(user)
    fake.add_notification(good[0] if good else bad[0], kind="invite")  # not a friend request: ignored
    return World(good, bad)


SCREENING = {"blocked_name_patterns": ["(?i)spam ?bot"], "min_account_age_days": 14}


def run_batch(settings: FlowsSettings, clock: FakeClock, secrets_: FakeSecrets) -> BatchSummary:
    """One run of the friend-request flow's logic, without Prefect (same steps, same ledger)."""
    with open_batch(settings, clock, credentials=secrets_.credentials) as batch:
        return process_friend_requests(batch, PLAIN_STEPS)
