"""The durable record of friend requests, decisions, accepts and group invites (SQLite).

Every step writes its intent before it talks to VRChat and its outcome after, each in one transaction, so a
run that dies at any point leaves enough behind for the next run to finish the work without losing a
request or inviting anyone twice:

- `friend_requests`: one row per friend-request notification and where it stands
  (received → accept/reject decided → accepting → accepted | gone, or → rejected);
- `accept_attempts`: the time every accept request went on the wire (retries included) and the time its
  answer came back: the rate window that survives restarts (rows that can no longer count are deleted);
- `group_invites`: one row per (group, user), primary key, so nobody is queued twice
  (pending → sending → invited | already_invited | already_member | failed);
- `events`: the audit log of every decision and invite, which the run summaries are built from.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from flows.domain.profiles import FriendRequestNotice

__all__ = ["FriendLedger", "InviteRow", "InviteState", "LedgerEvent", "RequestRow", "RequestState"]

RequestState = Literal[
    "received", "accept_decided", "reject_decided", "accepting", "accepted", "gone", "rejected"
]
InviteState = Literal["pending", "sending", "invited", "already_invited", "already_member", "failed"]

OPEN_REQUEST_STATES: tuple[RequestState, ...] = ("received", "accept_decided", "reject_decided", "accepting")
OPEN_INVITE_STATES: tuple[InviteState, ...] = ("pending", "sending")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS friend_requests (
    notification_id TEXT PRIMARY KEY,
    sender_id TEXT NOT NULL,
    state TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    reasons TEXT NOT NULL DEFAULT '',
    last_error TEXT NOT NULL DEFAULT '',
    received_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS accept_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id TEXT NOT NULL,
    at REAL NOT NULL,
    settled_at REAL
);
CREATE INDEX IF NOT EXISTS accept_attempts_at ON accept_attempts (at);
CREATE TABLE IF NOT EXISTS group_invites (
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    notification_id TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
"""


_SELECT_REQUESTS = (
    "SELECT notification_id, sender_id, state, display_name, reasons, last_error FROM friend_requests "
)
_SELECT_INVITES = "SELECT group_id, user_id, state, attempts, detail FROM group_invites "


@dataclass(frozen=True)
class RequestRow:
    """One friend request as the ledger knows it."""

    notification_id: str
    sender_id: str
    state: RequestState
    display_name: str
    reasons: str
    last_error: str


@dataclass(frozen=True)
class InviteRow:
    """One group invite as the ledger knows it; `attempts` counts the invites sent."""

    group_id: str
    user_id: str
    state: InviteState
    attempts: int
    detail: str


@dataclass(frozen=True)
class LedgerEvent:
    """One line of the audit log."""

    at: float
    kind: str
    user_id: str
    notification_id: str
    detail: str


class FriendLedger:
    """The SQLite ledger. One connection; every method is one transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(accept_attempts)")}
        if "settled_at" not in columns:  # a ledger written before answers were timed
            self._db.execute("ALTER TABLE accept_attempts ADD COLUMN settled_at REAL")

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @staticmethod
    def _event(
        db: sqlite3.Connection,
        at: float,
        kind: str,
        user_id: str,
        *,
        notification_id: str = "",
        detail: str = "",
    ) -> None:
        db.execute(
            "INSERT INTO events (at, kind, user_id, notification_id, detail) VALUES (?, ?, ?, ?, ?)",
            (at, kind, user_id, notification_id, detail),
        )

    # --- friend requests -------------------------------------------------------------------------------

    def record_received(self, notices: Iterable[FriendRequestNotice], now: float) -> int:
        """Remember new friend requests; returns how many were new."""
        new = 0
        with self._transaction() as db:
            for notice in notices:
                inserted = db.execute(
                    "INSERT OR IGNORE INTO friend_requests (notification_id, sender_id, state, received_at, "
                    "updated_at) VALUES (?, ?, 'received', ?, ?)",
                    (notice.notification_id, notice.sender_id, now, now),
                ).rowcount
                if inserted:
                    new += 1
                    self._event(db, now, "received", notice.sender_id, notification_id=notice.notification_id)
        return new

    def open_requests(self) -> list[RequestRow]:
        """Requests not finished yet, oldest first."""
        marks = ",".join("?" * len(OPEN_REQUEST_STATES))
        rows = self._db.execute(
            _SELECT_REQUESTS + f"WHERE state IN ({marks}) ORDER BY received_at, notification_id",
            OPEN_REQUEST_STATES,
        ).fetchall()
        return [RequestRow(*row) for row in rows]

    def request(self, notification_id: str) -> RequestRow:
        """One request (KeyError when unknown)."""
        row = self._db.execute(
            _SELECT_REQUESTS + "WHERE notification_id = ?",
            (notification_id,),
        ).fetchone()
        if row is None:
            raise KeyError(notification_id)
        return RequestRow(*row)

    def all_requests(self) -> list[RequestRow]:
        """Every request ever seen."""
        rows = self._db.execute(_SELECT_REQUESTS + "ORDER BY received_at, notification_id").fetchall()
        return [RequestRow(*row) for row in rows]

    def _move(
        self, db: sqlite3.Connection, notification_id: str, allowed: tuple[str, ...], state: str, now: float
    ) -> tuple[str, str]:
        row = db.execute(
            "SELECT state, sender_id FROM friend_requests WHERE notification_id = ?", (notification_id,)
        ).fetchone()
        if row is None:
            raise KeyError(notification_id)
        if row[0] not in allowed:
            raise ValueError(f"friend request {notification_id} is {row[0]}, not one of {allowed}")
        db.execute(
            "UPDATE friend_requests SET state = ?, last_error = '', updated_at = ? WHERE notification_id = ?",
            (state, now, notification_id),
        )
        return str(row[0]), str(row[1])

    def decide(
        self, notification_id: str, accept: bool, display_name: str, reasons: str, now: float
    ) -> RequestRow:
        """Record the screening decision."""
        state = "accept_decided" if accept else "reject_decided"
        with self._transaction() as db:
            _, sender = self._move(db, notification_id, ("received",), state, now)
            db.execute(
                "UPDATE friend_requests SET display_name = ?, reasons = ? WHERE notification_id = ?",
                (display_name, reasons, notification_id),
            )
            self._event(db, now, state, sender, notification_id=notification_id, detail=reasons)
        return self.request(notification_id)

    def begin_accept(self, notification_id: str, now: float) -> None:
        """Record that an accept is about to be sent (each request on the wire is counted by
        :meth:`claim_accept_slot`)."""
        with self._transaction() as db:
            _, sender = self._move(db, notification_id, ("accept_decided", "accepting"), "accepting", now)
            self._event(db, now, "accept_sent", sender, notification_id=notification_id)

    def finish_accept(
        self, notification_id: str, accepted: bool, group_id: str | None, now: float
    ) -> RequestRow:
        """Record the accept's outcome; an accepted friend is queued for the group invite (once)."""
        state = "accepted" if accepted else "gone"
        with self._transaction() as db:
            _, sender = self._move(db, notification_id, ("accepting",), state, now)
            self._event(db, now, state, sender, notification_id=notification_id)
            if accepted and group_id is not None:
                db.execute(
                    "INSERT OR IGNORE INTO group_invites (group_id, user_id, state, updated_at) "
                    "VALUES (?, ?, 'pending', ?)",
                    (group_id, sender, now),
                )
        return self.request(notification_id)

    def finish_reject(self, notification_id: str, action: str, now: float) -> RequestRow:
        """Record that a rejected request was dealt with (`action`: hidden or left)."""
        with self._transaction() as db:
            _, sender = self._move(db, notification_id, ("reject_decided",), "rejected", now)
            self._event(db, now, "rejected", sender, notification_id=notification_id, detail=action)
        return self.request(notification_id)

    def note_error(self, notification_id: str, message: str, now: float) -> None:
        """Record why a request could not be finished this time (it stays open for the next run)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE friend_requests SET last_error = ?, updated_at = ? WHERE notification_id = ?",
                (message[:500], now, notification_id),
            )
            sender = db.execute(
                "SELECT sender_id FROM friend_requests WHERE notification_id = ?", (notification_id,)
            ).fetchone()
            self._event(
                db,
                now,
                "error",
                sender[0] if sender else "",
                notification_id=notification_id,
                detail=message[:500],
            )

    # --- the rate window -------------------------------------------------------------------------------

    def claim_accept_slot(
        self, notification_id: str, now: float, limit: int, window_s: float, in_flight_s: float
    ) -> float:
        """Count one accept request about to go on the wire if fewer than `limit` may have reached VRChat
        in the last `window_s` seconds: returns 0.0 when it was counted, otherwise the seconds until there
        may be room (nothing is counted). One transaction, so runs that share the ledger never overshoot
        together.

        VRChat counts a request when it arrives, which is after it was sent and before its answer came
        back: an answered request counts until `window_s` after its answer, one still in flight as if it
        arrived now (at most `in_flight_s` after it was sent: the client gives up by then). So a request
        sent now arrives at least `window_s` after every request no longer counted. Earlier attempts for
        the same notification have been answered by now (the gateway retries after an answer)."""
        with self._transaction() as db:
            self._settle(db, notification_id, now)
            db.execute(
                "DELETE FROM accept_attempts WHERE COALESCE(settled_at, at + ?) <= ?",
                (in_flight_s, now - window_s),
            )
            rows = db.execute(
                "SELECT COALESCE(settled_at, at + ?) AS until, settled_at IS NULL FROM accept_attempts "
                "ORDER BY until",
                (in_flight_s,),
            ).fetchall()
            if len(rows) >= limit:
                until, in_flight = rows[-limit]
                wait = float(until) + window_s - now
                return max(min(wait, 1.0) if in_flight else wait, 0.001)  # in flight: its answer is near
            db.execute(
                "INSERT INTO accept_attempts (notification_id, at) VALUES (?, ?)", (notification_id, now)
            )
            return 0.0

    def settle_accept_attempts(self, notification_id: str, now: float) -> None:
        """Record that the accept requests for `notification_id` have their answers (or failed) by `now`."""
        with self._transaction() as db:
            self._settle(db, notification_id, now)

    @staticmethod
    def _settle(db: sqlite3.Connection, notification_id: str, now: float) -> None:
        db.execute(
            "UPDATE accept_attempts SET settled_at = ? WHERE notification_id = ? AND settled_at IS NULL",
            (now, notification_id),
        )

    def accept_attempts(self) -> list[tuple[float, float | None]]:
        """(sent at, answered by) of the accept requests that may still count in the window."""
        rows = self._db.execute("SELECT at, settled_at FROM accept_attempts ORDER BY at").fetchall()
        return [(float(at), None if settled is None else float(settled)) for at, settled in rows]

    # --- group invites ---------------------------------------------------------------------------------

    def open_invites(self, group_id: str) -> list[InviteRow]:
        """Invites to `group_id` not finished yet."""
        marks = ",".join("?" * len(OPEN_INVITE_STATES))
        rows = self._db.execute(
            _SELECT_INVITES + f"WHERE group_id = ? AND state IN ({marks}) ORDER BY updated_at, user_id",
            (group_id, *OPEN_INVITE_STATES),
        ).fetchall()
        return [InviteRow(*row) for row in rows]

    def invite(self, group_id: str, user_id: str) -> InviteRow:
        """One invite (KeyError when unknown)."""
        row = self._db.execute(
            _SELECT_INVITES + "WHERE group_id = ? AND user_id = ?",
            (group_id, user_id),
        ).fetchone()
        if row is None:
            raise KeyError((group_id, user_id))
        return InviteRow(*row)

    def all_invites(self) -> list[InviteRow]:
        """Every invite ever queued."""
        rows = self._db.execute(_SELECT_INVITES + "ORDER BY updated_at, user_id").fetchall()
        return [InviteRow(*row) for row in rows]

    def begin_invite(self, group_id: str, user_id: str, now: float) -> None:
        """Record that an invite is about to be sent."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE group_invites SET state = 'sending', attempts = attempts + 1, updated_at = ? "
                "WHERE group_id = ? AND user_id = ? AND state IN ('pending', 'sending')",
                (now, group_id, user_id),
            ).rowcount
            if not changed:
                raise ValueError(f"the invite of {user_id} to {group_id} is not open")
            self._event(db, now, "invite_sent", user_id, detail=group_id)

    def finish_invite(
        self, group_id: str, user_id: str, state: InviteState, detail: str, now: float
    ) -> InviteRow:
        """Record how an invite ended."""
        with self._transaction() as db:
            db.execute(
                "UPDATE group_invites SET state = ?, detail = ?, updated_at = ? "
                "WHERE group_id = ? AND user_id = ?",
                (state, detail[:500], now, group_id, user_id),
            )
            self._event(db, now, f"invite_{state}", user_id, detail=detail[:500] or group_id)
        return self.invite(group_id, user_id)

    # --- the audit log ---------------------------------------------------------------------------------

    def events_since(self, since: float) -> list[LedgerEvent]:
        """Audit log lines at or after `since`, in order."""
        rows = self._db.execute(
            "SELECT at, kind, user_id, notification_id, detail FROM events WHERE at >= ? ORDER BY id",
            (since,),
        ).fetchall()
        return [LedgerEvent(*row) for row in rows]
