"""The ways to run a conversation (live, recorded files, the demo) and what they share (memory)."""
