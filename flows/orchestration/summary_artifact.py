"""A run's summary (:class:`flows.domain.summary.BatchSummary`) in the run's log and as a Prefect markdown
artifact."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.domain.summary import BatchSummary

__all__ = ["publish_summary"]


def publish_summary(summary: BatchSummary, key: str, title: str) -> None:
    """Log the counts and attach the summary to the current flow run as a markdown artifact (`key` groups
    the artifacts of one flow across runs)."""
    counts = ", ".join(f"{kind} {count}" for kind, count in sorted(summary.counts.items())) or "nothing to do"
    get_run_logger().info("%s: %s%s", title, counts, f" ({summary.outcome})" if summary.outcome else "")
    create_markdown_artifact(markdown=summary.markdown(title), key=key, description=title)
