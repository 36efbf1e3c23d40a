"""The rules a sender must pass to be accepted as a friend. Pure: a profile and a date in, a verdict out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from flows.domain.profiles import SenderProfile
from flows.domain.settings import ScreeningSettings

__all__ = ["ScreeningRules", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    """Accept or not, and why (every rule that failed, or the rule that let the sender through)."""

    accept: bool
    reasons: tuple[str, ...]

    @property
    def explanation(self) -> str:
        """The reasons on one line."""
        return "; ".join(self.reasons)


class ScreeningRules:
    """The operator's rules: blocklist, allowlist, blocked trust tags, minimum account age, required tags,
    blocked display-name patterns. The blocklist wins over everything; the allowlist over the rest."""

    def __init__(self, settings: ScreeningSettings) -> None:
        self._settings = settings
        self._blocklist = frozenset(settings.blocklist)
        self._allowlist = frozenset(settings.allowlist)
        self._names = [re.compile(pattern, re.IGNORECASE) for pattern in settings.blocked_name_patterns]

    def judge(self, sender: SenderProfile, today: date) -> Verdict:
        """The verdict on `sender`, with account age counted up to `today`."""
        if sender.user_id in self._blocklist:
            return Verdict(False, ("on the blocklist",))
        if sender.user_id in self._allowlist:
            return Verdict(True, ("on the allowlist",))
        settings = self._settings
        reasons: list[str] = []
        blocked = sorted(set(sender.tags) & set(settings.blocked_tags))
        if blocked:
            reasons.append(f"blocked tags: {', '.join(blocked)}")
        if sender.date_joined is None:
            reasons.append("account age unknown (no date_joined)")
        elif (today - sender.date_joined).days < settings.min_account_age_days:
            age = (today - sender.date_joined).days
            reasons.append(f"account {age} days old, under {settings.min_account_age_days}")
        if settings.required_any_tags and not set(sender.tags) & set(settings.required_any_tags):
            reasons.append(f"none of the required tags: {', '.join(settings.required_any_tags)}")
        if any(pattern.search(sender.display_name) for pattern in self._names):
            reasons.append("display name matches a blocked pattern")
        if not sender.display_name.strip():
            reasons.append("empty display name")
        if reasons:
            return Verdict(False, tuple(reasons))
        return Verdict(True, ("passed every rule",))
