"""What VRChat tells the domain: who we are signed in as, the pending friend requests, their senders'
profiles, and what it said to a group invite. Plain values, read by the screening rules and the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

__all__ = ["FriendRequestNotice", "InviteAnswer", "SenderProfile", "SignIn"]

InviteAnswer = Literal["invited", "already_invited", "already_member"]
"""What VRChat said to a group invite; all three mean the user has been invited."""


@dataclass(frozen=True)
class SignIn:
    """Who we are signed in as, and whether the saved session was reused (no password login)."""

    user_id: str
    reused_session: bool


@dataclass(frozen=True)
class FriendRequestNotice:
    """A pending friend request: the notification and who sent it."""

    notification_id: str
    sender_id: str
    created_at: str


@dataclass(frozen=True)
class SenderProfile:
    """What the screening rules look at."""

    user_id: str
    display_name: str
    date_joined: date | None
    tags: tuple[str, ...]
    is_friend: bool
