"""The fake VRChat answers as the OpenAPI spec says: every answer of a scenario that uses every endpoint
(login with TOTP and with an email code, notifications, accept, hide, users, group invites and members,
their error answers) is validated against the spec vendored in fake_vrchat/vrchat-openapi; a malformed
answer is caught."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_vrchat import FakeVRChat, Fault
from fake_vrchat.openapi_check import SPEC, problems
from fake_vrchat.server import Exchange
from flow_harness import GROUP_ID, FakeClock, FakeSecrets, good_user, settings_for

from flows.composition import open_batch
from flows.domain.errors import EmailCodeRequiredError, MalformedResponseError


def test_every_answer_of_every_endpoint_follows_the_spec(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets
) -> None:
    assert SPEC.exists(), f"the OpenAPI spec is missing at {SPEC}"
    friend, other = fake.add_user(good_user(1)), fake.add_user(good_user(2))
    accepted, hidden = fake.add_notification(friend), fake.add_notification(other)
    fake.add_notification(other, kind="boop")
    with open_batch(settings_for(fake, data_dir), clock, credentials=fake_secrets.credentials) as batch:
        gateway = batch.gateway
        gateway.sign_in()
        gateway.friend_requests(100)
        gateway.sender(friend.id)
        assert gateway.accept(accepted) and not gateway.accept(accepted)  # 200, then 404
        gateway.hide(hidden)
        gateway.hide(accepted)  # accepted meanwhile: still 200 (the spec declares no 404 here)
        assert gateway.membership(GROUP_ID, friend.id) is None  # 200 null: not in the group
        assert accepted.startswith("frq_") and hidden.startswith("frq_")
        assert gateway.invite(GROUP_ID, friend.id, confirm_override_block=False) == "invited"
        assert gateway.invite(GROUP_ID, friend.id, confirm_override_block=False) == "already_invited"  # 400
        assert gateway.membership(GROUP_ID, friend.id) == "invited"
    with FakeVRChat(username=fake.username, password=fake.password, two_factor="emailOtp") as email_fake:
        with (
            open_batch(
                settings_for(email_fake, data_dir / "email"), clock, fake_secrets.credentials
            ) as batch,
            pytest.raises(EmailCodeRequiredError),
        ):
            batch.gateway.sign_in()
        exchanges = [*fake.exchanges, *email_fake.exchanges]

    statuses = {(exchange.method, exchange.status) for exchange in exchanges}
    assert {("GET", 200), ("PUT", 200), ("PUT", 404), ("POST", 200), ("POST", 400)} <= statuses
    assert any(e.path.startswith("/groups/") and e.body == b"null" for e in exchanges)
    assert {exchange: problems(exchange) for exchange in exchanges if problems(exchange)} == {}


def test_a_status_the_spec_does_not_declare_fails_the_check() -> None:
    """The check is not lenient about statuses: a 404 where the spec declares none is a problem."""
    not_found = b'{"error":{"message":"User not found","status_code":404}}'
    assert problems(
        Exchange(
            "GET", "/users/usr_00000000-0000-4000-8000-000000000001", "", 404, "application/json", not_found
        )
    )
    assert problems(
        Exchange("PUT", "/auth/user/notifications/frq_1/hide", "", 404, "application/json", not_found)
    )


def test_a_malformed_answer_fails_the_check(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets
) -> None:
    user = fake.add_user(good_user(1))
    fake.inject(Fault("GET", "/users/.*", "missing_fields"))
    with open_batch(settings_for(fake, data_dir), clock, credentials=fake_secrets.credentials) as batch:
        batch.gateway.sign_in()
        with pytest.raises(MalformedResponseError):
            batch.gateway.sender(user.id)
    broken = [exchange for exchange in fake.exchanges if exchange.path.startswith("/users/")]
    assert any("displayName" in problem for problem in problems(broken[0]))
    assert problems(
        Exchange("GET", "/auth/user", "", 200, "application/json", b'{"requiresTwoFactorAuth":1}')
    )
