"""Scheduled Prefect flows of the VRChat companion: friend requests, one-time group invites, and the VRChat
gateway they share. See docs/social.md. Importing this package imports nothing heavy."""
