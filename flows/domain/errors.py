"""What can go wrong when talking to VRChat, as exceptions whose messages are safe to log.

None of these carries response headers, cookies, credentials or codes, and none chains the client's
`ApiException` (whose text includes the response headers, cookies among them).
"""

from __future__ import annotations

__all__ = [
    "CredentialsMissingError",
    "EmailCodeRequiredError",
    "ItemError",
    "LoginFailedError",
    "MalformedResponseError",
    "OutcomeUnknownError",
    "RateLimitedError",
    "RequestRejectedError",
    "SessionExpiredError",
    "VRChatError",
    "VRChatUnavailableError",
]


class VRChatError(Exception):
    """Base of every gateway error."""


class ItemError(VRChatError):
    """A problem with one item (one request, one user): the batch goes on with the next one."""


class RequestRejectedError(ItemError):
    """VRChat answered 4xx: `status` and VRChat's own error message (never headers)."""

    def __init__(self, operation: str, status: int, api_message: str) -> None:
        super().__init__(f"{operation}: VRChat answered {status}: {api_message}")
        self.status = status
        self.api_message = api_message


class MalformedResponseError(ItemError):
    """VRChat answered 2xx with a body that does not have the fields we need."""


class OutcomeUnknownError(ItemError):
    """A request that changes something may or may not have taken effect (timeout, lost connection, 5xx);
    `cause` says what happened, naming the host."""

    def __init__(self, message: str, cause: str = "") -> None:
        super().__init__(message)
        self.cause = cause


class VRChatUnavailableError(VRChatError):
    """Rate limited, failing or unreachable after the configured attempts: the batch stops for this run."""


class RateLimitedError(VRChatUnavailableError):
    """VRChat keeps answering 429, or asks us to wait longer than allowed: the batch stops for this run."""


class SessionExpiredError(VRChatError):
    """VRChat answered 401 to a signed-in call: the next run finds the session invalid and signs in again."""


class CredentialsMissingError(VRChatError):
    """A new session is needed but no username/password is configured."""


class LoginFailedError(VRChatError):
    """VRChat refused the username/password or the two-factor code."""


class EmailCodeRequiredError(LoginFailedError):
    """VRChat asks for a code sent by email, which a scheduled run cannot read: it fails closed."""
