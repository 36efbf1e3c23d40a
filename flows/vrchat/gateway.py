"""The VRChat gateway: the calls of the domain's port (:class:`flows.domain.port.VRChatPort`), over the real
`vrchatapi` client, made safe.

- The session cookie is reused across runs (`SessionStore`); a password login happens only when VRChat no
  longer accepts it. 2FA by TOTP (`pyotp`); an email code fails closed and blocks further logins until the
  operator clears the block, so no loop of login attempts (and emails) can start.
- Every call has explicit timeouts, urllib3's own retries are off (one wire request per attempt), and our
  backoff honours Retry-After on 429 and 5xx.
- Exceptions are ours (`flows.domain.errors`), raised outside the client's exception handlers so that no
  `ApiException` (whose text holds the response headers, cookies included) is chained or logged.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from http.cookiejar import Cookie, CookieJar
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pyotp
import urllib3
import vrchatapi
from vrchatapi.api.authentication_api import AuthenticationApi
from vrchatapi.api.groups_api import GroupsApi
from vrchatapi.api.notifications_api import NotificationsApi
from vrchatapi.api.users_api import UsersApi
from vrchatapi.exceptions import ApiException, OpenApiException
from vrchatapi.models.create_group_invite_request import CreateGroupInviteRequest
from vrchatapi.models.two_factor_auth_code import TwoFactorAuthCode
from vrchatapi.models.two_factor_email_code import TwoFactorEmailCode

from flows.domain.backoff import BackoffPolicy, parse_retry_after
from flows.domain.clock import Clock, SystemClock
from flows.domain.credentials import VRChatCredentials, read_credentials
from flows.domain.errors import (
    CredentialsMissingError,
    EmailCodeRequiredError,
    LoginFailedError,
    MalformedResponseError,
    OutcomeUnknownError,
    RateLimitedError,
    RequestRejectedError,
    SessionExpiredError,
    VRChatUnavailableError,
)
from flows.domain.profiles import FriendRequestNotice, InviteAnswer, SenderProfile, SignIn
from flows.domain.session_store import BlockedLogin, LoginBlock, SessionCookies, SessionStore
from flows.domain.settings import VRChatSettings

__all__ = ["VRChatGateway"]

log = logging.getLogger(__name__)

_TOTP_REQUIRED = "2 Factor Authentication verification is required"
_EMAIL_REQUIRED = "Email 2 Factor Authentication verification is required"
_TRANSIENT = (urllib3.exceptions.HTTPError, OSError)


@dataclass(frozen=True)
class _Failure:
    """A failed attempt, described without the client's exception object."""

    status: int | None
    api_message: str
    retry_after: float | None = None
    malformed: bool = False

    @property
    def transient(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


def _api_message(body: Any) -> str:
    """VRChat's own error message from an error body: `{"error": {"message": ...}}`."""
    try:
        data = json.loads(body) if isinstance(body, bytes | str) else {}
        message = data["error"]["message"]
        return str(message).strip('"')[:200]
    except (ValueError, KeyError, TypeError):
        return "no error message"


class VRChatGateway:
    """The calls the flows make to VRChat (a :class:`~flows.domain.port.VRChatPort`). One instance per run;
    `close()` when done."""

    def __init__(
        self,
        settings: VRChatSettings,
        *,
        store: SessionStore,
        login_block: LoginBlock,
        credentials: Callable[[], VRChatCredentials | None] = read_credentials,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._login_block = login_block
        self._credentials = credentials
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._backoff = BackoffPolicy(
            settings.max_attempts, settings.backoff_base_s, settings.backoff_max_s, settings.backoff_jitter
        )
        self._timeout = (settings.connect_timeout_s, settings.read_timeout_s)
        self._host = urlsplit(settings.base_url).hostname or ""
        configuration = vrchatapi.Configuration(host=settings.base_url)
        configuration.retries = False  # one wire request per attempt; our backoff decides on retries
        configuration.debug = False  # debug logging would print credentials and bodies
        logging.getLogger("vrchatapi").setLevel(max(logging.INFO, logging.getLogger("vrchatapi").level))
        self._configuration = configuration
        self._client = vrchatapi.ApiClient(configuration)
        self._client.user_agent = settings.user_agent
        self._auth = AuthenticationApi(self._client)
        self._notifications = NotificationsApi(self._client)
        self._users = UsersApi(self._client)
        self._groups = GroupsApi(self._client)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    # --- signing in -------------------------------------------------------------------------------------

    def sign_in(self) -> SignIn:
        """Reuse the saved session when VRChat still accepts it; otherwise log in with the credentials."""
        blocked = self._login_block.current()
        if blocked is not None:
            raise _login_error(blocked)
        saved = self._store.load()
        if saved is not None:
            self._set_cookies(saved)
            user_id = self._current_user_if_signed_in()
            if user_id is not None:
                log.info("reusing the saved VRChat session")
                return SignIn(user_id, reused_session=True)
            self._store.clear()
            self._forget_cookie("auth")
        return SignIn(self._password_login(), reused_session=False)

    def _current_user_if_signed_in(self) -> str | None:
        try:
            body = self._call("check session", lambda: self._auth.get_current_user(**self._raw()))
        except SessionExpiredError:
            return None
        if _asks_second_factor(body):
            return None
        return self._user_id(body)

    def _password_login(self) -> str:
        credentials = self._credentials()
        if credentials is None:
            raise CredentialsMissingError(
                "no VRChat session and no credentials: export VRCHAT_USERNAME and VRCHAT_PASSWORD (and "
                "VRCHAT_TOTP_SECRET when the account uses an authenticator app), or store them in the OS "
                "keyring under the service 'vrchat-companion'"
            )
        log.info("logging in to VRChat with the password (no valid saved session)")
        self._configuration.username = credentials.username
        self._configuration.password = credentials.password.get_secret_value()
        try:
            body = self._login_call("login", lambda: self._auth.get_current_user(**self._raw()))
        except SessionExpiredError:
            self._block(
                "VRChat refused the username or password (401): check VRCHAT_USERNAME/VRCHAT_PASSWORD"
            )
        finally:
            self._configuration.username = None
            self._configuration.password = None
        if _asks_second_factor(body):
            body = self._second_factor(credentials, body["requiresTwoFactorAuth"])
        self._save_session()
        return self._user_id(body)

    def _second_factor(self, credentials: VRChatCredentials, methods: Any) -> dict[str, Any]:
        kinds = [str(kind) for kind in methods] if isinstance(methods, list) else []
        if "totp" not in kinds:
            self._block(
                "VRChat asks for an email code (emailOtp), which a scheduled run cannot read. Enable an "
                "authenticator app (TOTP) on the bot account and set VRCHAT_TOTP_SECRET, or log in once with "
                "`python -m flows login`; then clear this block with `python -m flows unblock-login`",
                email_code=True,
            )
        if credentials.totp_secret is None:
            self._block(
                "VRChat asks for a TOTP code and VRCHAT_TOTP_SECRET is not set; set it, then run "
                "`python -m flows unblock-login`"
            )
        try:
            code = pyotp.TOTP(credentials.totp_secret.get_secret_value()).now()
        except ValueError as exc:  # binascii.Error (not base32) is one too; neither names the secret
            problem = "too short" if "bits" in str(exc) else "not base32"
            self._block(
                f"VRCHAT_TOTP_SECRET is not a usable TOTP secret ({problem}): set it to the base32 "
                "secret the authenticator app was set up with (letters A-Z and digits 2-7, at least 24 "
                "of them), then run `python -m flows unblock-login`"
            )
        answer = self._login_call(
            "verify TOTP", lambda: self._auth.verify2_fa(TwoFactorAuthCode(code=code), **self._raw())
        )
        if not isinstance(answer, dict) or answer.get("verified") is not True:
            self._block(
                "VRChat rejected the TOTP code: check VRCHAT_TOTP_SECRET and the system clock, then "
                "run `python -m flows unblock-login`"
            )
        body = self._call("check session", lambda: self._auth.get_current_user(**self._raw()))
        if _asks_second_factor(body):
            self._block("VRChat still asks for two-factor authentication after a verified TOTP code")
        return body

    def verify_email_code(self, code: str) -> None:
        """Finish an interactive login that VRChat answered with emailOtp (`python -m flows login`)."""
        answer = self._login_call(
            "verify email code",
            lambda: self._auth.verify2_fa_email_code(TwoFactorEmailCode(code=code), **self._raw()),
        )
        if not isinstance(answer, dict) or answer.get("verified") is not True:
            raise LoginFailedError("VRChat rejected the email code")
        self._save_session()

    def _block(self, reason: str, email_code: bool = False) -> NoReturn:
        blocked = BlockedLogin(reason, email_code)
        self._login_block.set(blocked)
        raise _login_error(blocked)

    def _login_call(self, operation: str, send: Callable[[], Any]) -> dict[str, Any]:
        try:
            return self._call(operation, send, changes_state=True)
        except OutcomeUnknownError as exc:
            raise VRChatUnavailableError(
                f"{operation}: no clear answer from VRChat ({exc.cause}); the next run tries again"
            ) from None

    # --- the calls the flows make ----------------------------------------------------------------------

    def friend_requests(self, limit: int) -> tuple[list[FriendRequestNotice], int]:
        """Pending friend requests, and how many were unreadable (VRChat's type filter does nothing)."""
        page = self._settings.page_size
        notices: list[FriendRequestNotice] = []
        unreadable = 0
        offset = 0
        while len(notices) < limit:
            batch = self._call(
                "list notifications",
                lambda offset=offset: self._notifications.get_notifications(  # type: ignore[misc]
                    hidden=False, n=page, offset=offset, **self._raw()
                ),
            )
            if not isinstance(batch, list):
                raise MalformedResponseError("list notifications: VRChat did not answer with a list")
            for item in batch:
                notice = _friend_request(item)
                if notice is None:
                    unreadable += _unreadable(item)
                elif notice.notification_id not in {n.notification_id for n in notices}:
                    notices.append(notice)
            if len(batch) < page:
                break
            offset += page
        return notices[:limit], unreadable

    def sender(self, user_id: str) -> SenderProfile:
        """The profile of `user_id`."""
        body = self._call("get user", lambda: self._users.get_user(user_id, **self._raw()))
        try:
            tags = body["tags"]
            joined = body.get("date_joined")
            profile = SenderProfile(
                user_id=str(body["id"]),
                display_name=str(body["displayName"]),
                date_joined=date.fromisoformat(joined) if isinstance(joined, str) and joined else None,
                tags=tuple(str(tag) for tag in tags) if isinstance(tags, list) else _bad("tags"),
                is_friend=bool(body.get("isFriend", False)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise MalformedResponseError(
                f"get user {user_id}: unreadable profile ({type(exc).__name__}: {exc})"
            ) from None
        if profile.user_id != user_id:
            raise MalformedResponseError(f"get user {user_id}: VRChat answered with another user")
        return profile

    def accept(self, notification_id: str, before_each: Callable[[], object] | None = None) -> bool:
        """Accept a friend request; False when VRChat no longer has it (already accepted, or withdrawn).

        `before_each` runs right before every attempt goes on the wire, retries included (the rate window
        waits for room and counts it there)."""
        found, _ = self._call_unless_gone(
            "accept friend request",
            lambda: self._notifications.accept_friend_request(notification_id, **self._raw()),
            before_each,
        )
        return found

    def hide(self, notification_id: str) -> None:
        """Hide (dismiss) a notification; one VRChat no longer has needs no hiding."""
        self._call_unless_gone(
            "hide notification",
            lambda: self._notifications.delete_notification(notification_id, **self._raw()),
        )

    def invite(self, group_id: str, user_id: str, confirm_override_block: bool) -> InviteAnswer:
        """Invite `user_id` to the group; "already invited" and "already a member" count as done.

        Raises `OutcomeUnknownError` when the invite may or may not have been made: check `membership()`
        before sending it again.
        """
        request = CreateGroupInviteRequest(user_id=user_id, confirm_override_block=confirm_override_block)
        try:
            self._call(
                "invite to group",
                lambda: self._groups.create_group_invite(group_id, request, **self._raw()),
                changes_state=True,
            )
        except RequestRejectedError as exc:
            text = exc.api_message.lower()
            if exc.status == 400 and "already invited" in text:
                return "already_invited"
            if exc.status == 400 and "already a member" in text:
                return "already_member"
            raise
        return "invited"

    def membership(self, group_id: str, user_id: str) -> str | None:
        """`user_id`'s membership status in the group ("invited", "member", ...), or None if there is none."""
        found, body = self._call_unless_gone(
            "get group member", lambda: self._groups.get_group_member(group_id, user_id, **self._raw())
        )
        status = body.get("membershipStatus") if found and isinstance(body, dict) else None
        return str(status) if status else None

    # --- plumbing --------------------------------------------------------------------------------------

    def _raw(self) -> dict[str, Any]:
        """Options for every call: explicit timeouts and the raw body (we read the fields we need)."""
        return {"_request_timeout": self._timeout, "_preload_content": False}

    def _call(
        self,
        operation: str,
        send: Callable[[], Any],
        *,
        changes_state: bool = False,
        before_each: Callable[[], object] | None = None,
    ) -> Any:
        """Send with backoff; returns the decoded JSON body (None when empty). See the module docstring.
        `before_each` runs before every attempt, after any backoff sleep."""
        attempt = 0
        while True:
            attempt += 1
            if before_each is not None:
                before_each()
            outcome = self._attempt(send)
            if isinstance(outcome, _Answer):
                return outcome.body
            failure = outcome
            if failure.malformed:
                raise MalformedResponseError(f"{operation}: {failure.api_message}")
            if failure.status == 401:
                raise SessionExpiredError(f"{operation}: VRChat answered 401 ({failure.api_message})")
            if not failure.transient:
                raise RequestRejectedError(operation, failure.status or 0, failure.api_message)
            cause = self._describe(failure)
            if changes_state and failure.status != 429:
                raise OutcomeUnknownError(f"{operation}: {cause}; it may or may not have taken effect", cause)
            wait = self._backoff.delay(attempt, failure.retry_after, self._rng)
            if wait is None:
                error = RateLimitedError if failure.status == 429 else VRChatUnavailableError
                raise error(f"{operation}: {cause}; {self._why_stopped(failure, attempt)}")
            log.warning("%s: %s; attempt %d, next in %.1f s", operation, cause, attempt, wait)
            self._clock.sleep(wait)

    def _describe(self, failure: _Failure) -> str:
        """What went wrong, naming the host (never headers, cookies or bodies)."""
        if failure.status is None:
            return f"{failure.api_message} ({self._host})"
        return f"{self._host} answered {failure.status} ({failure.api_message})"

    def _why_stopped(self, failure: _Failure, attempts: int) -> str:
        """Why no further attempt is made, and what happens next."""
        ceiling = self._settings.backoff_max_s
        if failure.retry_after is not None and failure.retry_after > ceiling:
            return (
                f"VRChat asked to wait {failure.retry_after:.0f} s (Retry-After), longer than "
                f"flows.vrchat.backoff_max_s ({ceiling:.0f} s), so this run stops; the next run tries again"
            )
        return f"gave up after {attempts} attempt(s) (flows.vrchat.max_attempts); the next run tries again"

    def _call_unless_gone(
        self, operation: str, send: Callable[[], Any], before_each: Callable[[], object] | None = None
    ) -> tuple[bool, Any]:
        """`_call`, where a 404 means the thing is gone: (False, None) instead of an error."""
        try:
            return True, self._call(operation, send, before_each=before_each)
        except RequestRejectedError as exc:
            if exc.status != 404:
                raise
        return False, None

    def _attempt(self, send: Callable[[], Any]) -> _Answer | _Failure:
        try:
            response = send()
        except ApiException as exc:
            if exc.status in (None, 0):
                return _Failure(None, "no HTTP answer")
            header = exc.headers.get("Retry-After") if exc.headers else None
            retry_after = parse_retry_after(header, self._clock.now())
            reason = str(exc.reason or "")
            if reason.startswith(_EMAIL_REQUIRED):
                return _Answer({"requiresTwoFactorAuth": ["emailOtp"]})
            if reason.startswith(_TOTP_REQUIRED):
                return _Answer({"requiresTwoFactorAuth": ["totp", "otp"]})
            return _Failure(int(exc.status), _api_message(exc.body), retry_after)
        except _TRANSIENT as exc:
            return _Failure(None, _connection_problem(exc))
        except OpenApiException as exc:
            return _Failure(None, f"unusable answer ({type(exc).__name__})", malformed=True)
        return _decode(response)

    def _set_cookies(self, cookies: SessionCookies) -> None:
        jar = self._jar()
        for name, value in (("auth", cookies.auth), ("twoFactorAuth", cookies.two_factor)):
            if value:
                jar.set_cookie(_cookie(name, value, self._host))

    def _forget_cookie(self, name: str) -> None:
        jar = self._jar()
        for cookie in list(jar):
            if cookie.name == name:
                jar.clear(cookie.domain, cookie.path, cookie.name)

    def _save_session(self) -> None:
        values = {cookie.name: cookie.value for cookie in self._jar() if cookie.value}
        if "auth" not in values:
            raise LoginFailedError("VRChat did not set a session cookie after the login")
        self._store.save(SessionCookies(auth=values["auth"], two_factor=values.get("twoFactorAuth")))

    def _jar(self) -> CookieJar:
        jar: CookieJar = self._client.rest_client.cookie_jar
        return jar

    @staticmethod
    def _user_id(body: Any) -> str:
        user_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(user_id, str) or not user_id:
            raise MalformedResponseError("current user: no id in VRChat's answer")
        return user_id


@dataclass(frozen=True)
class _Answer:
    body: Any


def _login_error(blocked: BlockedLogin) -> LoginFailedError:
    return EmailCodeRequiredError(blocked.reason) if blocked.email_code else LoginFailedError(blocked.reason)


def _asks_second_factor(body: Any) -> bool:
    return isinstance(body, dict) and "requiresTwoFactorAuth" in body


def _decode(response: Any) -> _Answer | _Failure:
    data = response.data if response is not None else b""
    if not data:
        return _Answer(None)
    try:
        return _Answer(json.loads(data))
    except ValueError:
        return _Failure(None, "the answer is not JSON", malformed=True)


def _connection_problem(exc: BaseException) -> str:
    """A connection failure in words: the innermost cause urllib3 wrapped (refused, timed out, no such
    host), without the request or its headers."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else current.__cause__ or current.__context__
    for cause in reversed(seen):
        if isinstance(cause, TimeoutError | urllib3.exceptions.TimeoutError):
            return "no answer in time"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.strerror:
            return f"connection problem: {cause.strerror}"
    return f"connection problem ({type(exc).__name__})"


def _bad(field: str) -> Any:
    raise TypeError(f"{field} has the wrong type")


def _unreadable(item: Any) -> int:
    """1 when `item` may be a friend request we cannot read (not an object, or no usable type)."""
    return int(not isinstance(item, dict) or item.get("type") in (None, "friendRequest"))


def _friend_request(item: Any) -> FriendRequestNotice | None:
    """A friendRequest notification, or None for other types and unreadable items."""
    if not isinstance(item, dict) or item.get("type") != "friendRequest":
        return None
    notification_id, sender_id = item.get("id"), item.get("senderUserId")
    if (
        not isinstance(notification_id, str)
        or not notification_id
        or not isinstance(sender_id, str)
        or not sender_id
    ):
        log.warning("skipping a friend request notification without id or sender")
        return None
    return FriendRequestNotice(notification_id, sender_id, str(item.get("created_at", "")))


def _cookie(name: str, value: str, host: str) -> Cookie:
    return Cookie(
        version=0,
        name=name,
        value=value,
        port=None,
        port_specified=False,
        domain=host,
        domain_specified=False,
        domain_initial_dot=False,
        path="/",
        path_specified=True,
        secure=False,
        expires=None,
        discard=False,
        comment=None,
        comment_url=None,
        rest={"HttpOnly": ""},
    )
