"""Signing in: the saved session is reused across runs, 2FA by TOTP, an email code fails closed."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from fake_vrchat import FakeVRChat
from flow_harness import FakeClock, FakeSecrets, populate, run_batch, settings_for
from pydantic import SecretStr

from flows.composition import login_block, open_batch
from flows.domain.credentials import VRChatCredentials, read_credentials
from flows.domain.errors import CredentialsMissingError, EmailCodeRequiredError, LoginFailedError
from flows.domain.settings import FlowsSettings


def _one_run(
    settings: FlowsSettings, clock: FakeClock, credentials: Callable[[], VRChatCredentials | None]
) -> bool:
    """What every run does first: sign in, then one signed-in call. Returns whether the session was reused."""
    with open_batch(settings, clock, credentials=credentials) as batch:
        signed_in = batch.gateway.sign_in()
        batch.gateway.friend_requests(10)
        return signed_in.reused_session


def test_a_hundred_runs_make_one_password_login(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets
) -> None:
    settings = settings_for(fake, data_dir)
    world = populate(fake, valid=3, abusive=0)
    for run in range(100):  # the friend-request flow's steps, each run a new gateway and ledger
        run_batch(settings, clock, fake_secrets)
        assert fake.password_logins == 1, f"run {run}"
        clock.t += 300.0
    assert fake.count("GET", "/auth/user/notifications") == 100
    assert fake.friends == {user.id for user in world.valid}
    assert fake.count("POST", "/auth/twofactorauth/totp/verify") == 1
    cookie_file = settings.cookie_path
    assert stat.S_IMODE(cookie_file.stat().st_mode) == 0o600
    assert fake_secrets.password not in cookie_file.read_text()


def test_an_expired_session_means_one_new_login(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets
) -> None:
    settings = settings_for(fake, data_dir)
    _one_run(settings, clock, fake_secrets.credentials)
    fake.sessions.clear()  # VRChat forgot the session
    assert _one_run(settings, clock, fake_secrets.credentials) is False
    assert _one_run(settings, clock, fake_secrets.credentials) is True
    assert fake.password_logins == 2
    # the twoFactorAuth cookie from the first login spares the second TOTP round
    assert fake.count("POST", "/auth/twofactorauth/totp/verify") == 1


def test_a_loose_cookie_file_is_tightened(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets
) -> None:
    settings = settings_for(fake, data_dir)
    _one_run(settings, clock, fake_secrets.credentials)
    settings.cookie_path.chmod(0o644)
    assert _one_run(settings, clock, fake_secrets.credentials) is True
    assert stat.S_IMODE(settings.cookie_path.stat().st_mode) == 0o600


def test_an_email_code_fails_closed_once_and_blocks_further_logins(
    fake_secrets: FakeSecrets, clock: FakeClock, data_dir: Path
) -> None:
    with FakeVRChat(
        username=fake_secrets.username, password=fake_secrets.password, two_factor="emailOtp"
    ) as fake:
        settings = settings_for(fake, data_dir)
        with pytest.raises(EmailCodeRequiredError, match=r"email code.*VRCHAT_TOTP_SECRET.*unblock-login"):
            _one_run(settings, clock, fake_secrets.credentials)
        assert fake.password_logins == 1
        before = len(fake.requests)
        for _ in range(5):  # scheduled runs after it: no request at all, the same clear message
            with pytest.raises(EmailCodeRequiredError, match="email code"):
                _one_run(settings, clock, fake_secrets.credentials)
        assert len(fake.requests) == before
        assert fake.count("POST", "/auth/twofactorauth/emailotp/verify") == 0

        login_block(settings).clear()  # the operator's `python -m flows unblock-login`
        with open_batch(settings, clock, credentials=fake_secrets.credentials) as batch:
            with pytest.raises(EmailCodeRequiredError):
                batch.gateway.sign_in()
            batch.gateway.verify_email_code(fake.email_code)  # `python -m flows login` types the code
        login_block(settings).clear()
        assert _one_run(settings, clock, fake_secrets.credentials) is True
        assert fake.password_logins == 2


def test_a_wrong_password_is_not_retried(fake: FakeVRChat, clock: FakeClock, data_dir: Path) -> None:
    settings = settings_for(fake, data_dir)
    wrong = VRChatCredentials(fake.username, password=SecretStr("not-the-password"))
    with pytest.raises(LoginFailedError, match="refused the username or password"):
        _one_run(settings, clock, lambda: wrong)
    with pytest.raises(LoginFailedError, match="refused the username or password"):
        _one_run(settings, clock, lambda: wrong)
    assert fake.count("GET", "/auth/user") == 1


def test_a_missing_totp_secret_says_so(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets
) -> None:
    no_totp = VRChatCredentials(fake_secrets.username, fake_secrets.credentials().password)
    with pytest.raises(LoginFailedError, match="VRCHAT_TOTP_SECRET is not set"):
        _one_run(settings_for(fake, data_dir), clock, lambda: no_totp)


@pytest.mark.parametrize(
    ("secret", "problem"), [("JBSWY3DPEHPK3PXP", "too short"), ("NOT-BASE32!1", "not base32")]
)
def test_a_malformed_totp_secret_blocks_logins_after_the_first(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets, secret: str, problem: str
) -> None:
    """A secret pyotp cannot use used to end each run with a raw ValueError and no block, so every scheduled
    run logged in with the password again (VRChat answers that with 429 "too many sessions")."""
    malformed = VRChatCredentials(
        fake_secrets.username, fake_secrets.credentials().password, totp_secret=SecretStr(secret)
    )
    settings = settings_for(fake, data_dir)
    with pytest.raises(
        LoginFailedError, match=rf"VRCHAT_TOTP_SECRET is not a usable TOTP secret \({problem}\)"
    ) as first:
        _one_run(settings, clock, lambda: malformed)
    assert secret not in str(first.value)
    with pytest.raises(LoginFailedError, match="unblock-login"):
        _one_run(settings, clock, lambda: malformed)
    assert fake.count("GET", "/auth/user") == 1, "one password login, then the block"


def test_no_credentials_and_no_session_is_a_clear_error(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("VRCHAT_USERNAME", "VRCHAT_PASSWORD", "VRCHAT_TOTP_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("flows.domain.credentials._from_keyring", lambda key: None)
    with pytest.raises(CredentialsMissingError, match="export VRCHAT_USERNAME and VRCHAT_PASSWORD"):
        _one_run(settings_for(fake, data_dir), clock, read_credentials)
    assert fake.requests == []


def test_credentials_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, fake_secrets: FakeSecrets
) -> None:
    monkeypatch.setenv("VRCHAT_USERNAME", fake_secrets.username)
    monkeypatch.setenv("VRCHAT_PASSWORD", fake_secrets.password)
    monkeypatch.setenv("VRCHAT_TOTP_SECRET", fake_secrets.totp_secret)
    credentials = read_credentials()
    assert credentials is not None
    assert credentials.password.get_secret_value() == fake_secrets.password
    shown = f"{credentials!r} {credentials}"
    assert fake_secrets.password not in shown and fake_secrets.totp_secret not in shown
