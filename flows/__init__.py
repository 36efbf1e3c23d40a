"""Scheduled Prefect flows of the VRChat companion: friend requests, one-time group invites, session expiry.

Three layers, each in its own package: :mod:`flows.domain` (plain Python: the ledger, the screening rules,
the rate window, the batch logic and the port to VRChat), :mod:`flows.vrchat` (the gateway, the only code
that imports `vrchatapi`) and :mod:`flows.orchestration` (the only code that imports Prefect);
:mod:`flows.composition` wires a run's batch. See docs/social.md. Importing this package imports nothing
heavy."""
