"""The Prefect layer: the flows, their tasks, deployments, the one-run-at-a-time slot, crash detection, run
summaries as artifacts and pipeline events. The only package of `flows` that imports Prefect."""
