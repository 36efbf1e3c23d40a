"""A flaky VRChat: 429 with and without Retry-After, 500, a hanging socket, malformed answers.

Every logical attempt is exactly one wire request (urllib3's own retries are off); the waits between them
are the configured backoff or VRChat's Retry-After, slept on the injected clock.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_vrchat import FakeUser, FakeVRChat, Fault
from flow_harness import GROUP_ID, FakeClock, FakeSecrets, good_user, settings_for

from flows.composition import open_batch
from flows.domain.errors import (
    MalformedResponseError,
    OutcomeUnknownError,
    RateLimitedError,
    VRChatError,
    VRChatUnavailableError,
)
from flows.vrchat.gateway import VRChatGateway


@pytest.fixture
def user(fake: FakeVRChat) -> FakeUser:
    return fake.add_user(good_user(1))


@pytest.fixture
def gateway(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets
) -> Iterator[VRChatGateway]:
    settings = settings_for(
        fake, data_dir, vrchat={"max_attempts": 4, "backoff_base_s": 2.0, "backoff_max_s": 60.0}
    )
    with open_batch(settings, clock, credentials=fake_secrets.credentials) as batch:
        assert isinstance(batch.gateway, VRChatGateway)  # the batch holds it as its port
        batch.gateway.sign_in()
        clock.sleeps.clear()
        yield batch.gateway


def test_429_with_retry_after_waits_what_vrchat_says(
    gateway: VRChatGateway, fake: FakeVRChat, clock: FakeClock, user: FakeUser
) -> None:
    fake.inject(Fault("GET", "/users/.*", "429", times=2, retry_after="13"))
    assert gateway.sender(user.id).display_name == user.display_name
    assert fake.count("GET", "/users/.*") == 3
    assert clock.sleeps == [13.0, 13.0]


def test_429_without_retry_after_backs_off_exponentially(
    gateway: VRChatGateway, fake: FakeVRChat, clock: FakeClock, user: FakeUser
) -> None:
    fake.inject(Fault("GET", "/users/.*", "429", times=3))
    gateway.sender(user.id)
    assert fake.count("GET", "/users/.*") == 4
    assert clock.sleeps == [2.0, 4.0, 8.0]


def test_a_retry_after_longer_than_allowed_stops_at_once(
    gateway: VRChatGateway, fake: FakeVRChat, clock: FakeClock, user: FakeUser
) -> None:
    fake.inject(Fault("GET", "/users/.*", "429", times=1, retry_after="3600"))
    with pytest.raises(RateLimitedError, match="429") as raised:
        gateway.sender(user.id)
    assert fake.count("GET", "/users/.*") == 1
    assert clock.sleeps == []
    message = str(raised.value)  # why it stopped, and what happens next
    assert "asked to wait 3600 s" in message and "backoff_max_s (60 s)" in message
    assert "next run tries again" in message and "127.0.0.1" in message


@pytest.mark.parametrize("broken", ["refused", "500"])
def test_a_login_without_a_clear_answer_names_the_host_and_the_cause(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets, broken: str
) -> None:
    settings = settings_for(fake, data_dir)
    if broken == "refused":
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        settings = settings_for(fake, data_dir, vrchat={"base_url": f"http://127.0.0.1:{port}/api/1"})
    else:
        fake.inject(Fault("GET", "/auth/user", "500"))
    with (
        open_batch(settings, clock, credentials=fake_secrets.credentials) as batch,
        pytest.raises(VRChatUnavailableError) as raised,
    ):
        batch.gateway.sign_in()
    message = str(raised.value)
    cause = "connection refused (127.0.0.1)" if broken == "refused" else "127.0.0.1 answered 500"
    assert message.startswith("login: no clear answer from VRChat") and cause in message, message
    assert "next run tries again" in message


def test_500s_are_retried_until_the_attempts_run_out(
    gateway: VRChatGateway, fake: FakeVRChat, clock: FakeClock, user: FakeUser
) -> None:
    fake.inject(Fault("GET", "/users/.*", "500", times=10))
    with pytest.raises(VRChatUnavailableError, match=r"500.*after 4 attempt"):
        gateway.sender(user.id)
    assert fake.count("GET", "/users/.*") == 4
    assert clock.sleeps == [2.0, 4.0, 8.0]


def test_a_hanging_socket_times_out_and_is_retried(
    gateway: VRChatGateway, fake: FakeVRChat, clock: FakeClock, user: FakeUser
) -> None:
    fake.inject(Fault("GET", "/users/.*", "hang", times=1))
    assert gateway.sender(user.id).user_id == user.id
    assert fake.count("GET", "/users/.*") == 2
    assert clock.sleeps == [2.0]


@pytest.mark.parametrize("kind", ["not_json", "missing_fields"])
def test_a_malformed_answer_is_an_item_error_and_not_retried(
    gateway: VRChatGateway, fake: FakeVRChat, user: FakeUser, kind: str
) -> None:
    fake.inject(Fault("GET", "/users/.*", kind))  # type: ignore[arg-type]
    with pytest.raises(MalformedResponseError):
        gateway.sender(user.id)
    assert fake.count("GET", "/users/.*") == 1


def test_an_invite_whose_outcome_is_unknown_is_not_resent_blindly(
    gateway: VRChatGateway, fake: FakeVRChat, clock: FakeClock, user: FakeUser
) -> None:
    fake.inject(Fault("POST", "/groups/.*/invites", "hang"))
    with pytest.raises(OutcomeUnknownError):
        gateway.invite(GROUP_ID, user.id, confirm_override_block=False)
    fake.inject(Fault("POST", "/groups/.*/invites", "500"))
    with pytest.raises(OutcomeUnknownError):
        gateway.invite(GROUP_ID, user.id, confirm_override_block=False)
    assert fake.count("POST", "/groups/.*/invites") == 2
    fake.inject(Fault("POST", "/groups/.*/invites", "429", retry_after="5"))  # refused, so safe to resend
    assert gateway.invite(GROUP_ID, user.id, confirm_override_block=False) == "invited"
    assert clock.sleeps == [5.0]


def test_notifications_that_are_not_friend_requests_or_unreadable_are_skipped(
    gateway: VRChatGateway, fake: FakeVRChat, user: FakeUser
) -> None:
    wanted = fake.add_notification(user)
    fake.add_notification(user, kind="boop")
    fake.add_notification(user, kind="invite")
    broken = fake.add_notification(good_user(2))
    for item in fake.notifications:
        if item["id"] == broken:
            del item["senderUserId"]
    notices, unreadable = gateway.friend_requests(100)
    assert [notice.notification_id for notice in notices] == [wanted]
    assert unreadable == 1


def test_every_request_carries_the_configured_user_agent(gateway: VRChatGateway, fake: FakeVRChat) -> None:
    gateway.friend_requests(100)
    assert {request.user_agent for request in fake.requests} == {
        "vrchat-companion/0.1.0 https://github.com/vrchat-companion/vrchat-companion"
    }


def test_error_messages_hold_no_cookie_or_header(
    gateway: VRChatGateway, fake: FakeVRChat, user: FakeUser
) -> None:
    fake.inject(Fault("GET", "/users/.*", "500", times=10))
    with pytest.raises(VRChatError) as caught:
        gateway.sender(user.id)
    text = f"{caught.value} {caught.value!r} {caught.value.__cause__} {caught.value.__context__}"
    assert "authcookie_" not in text and "Set-Cookie" not in text and "HTTP response headers" not in text
    assert caught.value.__cause__ is None and caught.value.__context__ is None
