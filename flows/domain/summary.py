"""What a run decided and did, from the ledger's audit log, and its markdown report (published as a Prefect
artifact by :mod:`flows.orchestration.summary_artifact`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from flows.domain.ledger import FriendLedger, InviteRow, RequestRow

__all__ = ["BatchSummary", "summarize"]


@dataclass(frozen=True)
class BatchSummary:
    """Counts of what happened (event kinds from the ledger), and the requests and invites touched."""

    counts: dict[str, int]
    requests: tuple[RequestRow, ...]
    invites: tuple[InviteRow, ...]
    outcome: str = ""
    """Why the run ended early (stopped by errors, or skipped), empty when it finished."""

    def markdown(self, title: str) -> str:
        """A markdown report: no credentials, cookies or codes are ever in the ledger, so none are here."""
        lines = [f"# {title}", ""]
        if self.outcome:
            lines += [f"**{_cell(self.outcome, 1000)}**", ""]
        lines += ["| what | count |", "| --- | --- |"]
        lines += [f"| {kind} | {count} |" for kind, count in sorted(self.counts.items())] or [
            "| nothing to do | 0 |"
        ]
        if self.requests:
            lines += ["", "## Friend requests", "", "| sender | name | state | reasons |"]
            lines += ["| --- | --- | --- | --- |"]
            lines += [
                f"| {_cell(r.sender_id)} | {_cell(r.display_name)} | {r.state} | {_cell(r.reasons)} |"
                for r in self.requests
            ]
        errors = [r for r in self.requests if r.last_error]
        if errors:  # a list, not a table column: the UI would cut long messages at the column's width
            lines += ["", "## Last errors", ""]
            lines += [f"- {_cell(r.sender_id)}: {_cell(r.last_error, 1000)}" for r in errors]
        if self.invites:
            lines += [
                "",
                "## Group invites",
                "",
                "| user | state | sent | detail |",
                "| --- | --- | --- | --- |",
            ]
            lines += [
                f"| {_cell(i.user_id)} | {i.state} | {i.attempts} | {_cell(i.detail)} |" for i in self.invites
            ]
        return "\n".join(lines) + "\n"


def _cell(text: str, limit: int = 300) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:limit]


def summarize(ledger: FriendLedger, since: float, outcome: str = "") -> BatchSummary:
    """Everything the ledger recorded at or after `since` (`outcome`: why the run ended early, if it did)."""
    events = ledger.events_since(since)
    notification_ids = {event.notification_id for event in events if event.notification_id}
    invited_users = {event.user_id for event in events if event.kind.startswith("invite_")}
    return BatchSummary(
        counts=dict(Counter(event.kind for event in events)),
        requests=tuple(row for row in ledger.all_requests() if row.notification_id in notification_ids),
        invites=tuple(row for row in ledger.all_invites() if row.user_id in invited_users),
        outcome=outcome,
    )
