"""The port to VRChat: the calls the domain makes, as a Protocol. :class:`flows.vrchat.gateway.VRChatGateway`
implements it over the real `vrchatapi` client; the domain never imports it.

Every method raises the errors of :mod:`flows.domain.errors` (never the client's own exceptions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from flows.domain.profiles import FriendRequestNotice, InviteAnswer, SenderProfile, SignIn

__all__ = ["VRChatPort"]


class VRChatPort(Protocol):
    """The calls one run makes to VRChat."""

    def sign_in(self) -> SignIn:
        """Reuse the saved session when VRChat still accepts it; otherwise log in with the credentials."""
        ...

    def verify_email_code(self, code: str) -> None:
        """Finish an interactive login that VRChat answered with emailOtp (`python -m flows login`)."""
        ...

    def friend_requests(self, limit: int) -> tuple[list[FriendRequestNotice], int]:
        """Pending friend requests (at most `limit`), and how many notifications were unreadable."""
        ...

    def sender(self, user_id: str) -> SenderProfile:
        """The profile of `user_id`."""
        ...

    def accept(self, notification_id: str, before_each: Callable[[], object] | None = None) -> bool:
        """Accept a friend request; False when VRChat no longer has it. `before_each` runs right before
        every attempt goes on the wire, retries included."""
        ...

    def hide(self, notification_id: str) -> None:
        """Hide (dismiss) a notification."""
        ...

    def invite(self, group_id: str, user_id: str, confirm_override_block: bool) -> InviteAnswer:
        """Invite `user_id` to the group; raises `OutcomeUnknownError` when the invite may or may not have
        been made (check `membership()` before sending it again)."""
        ...

    def membership(self, group_id: str, user_id: str) -> str | None:
        """`user_id`'s membership status in the group ("invited", "member", ...), or None."""
        ...
