"""The social domain: friend requests, screening, the ledger, the rate window and the batch logic, in plain
Python (no Prefect, no `vrchatapi`); it reaches VRChat through the port in :mod:`flows.domain.port`."""
