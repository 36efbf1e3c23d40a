"""Noise suppression applied to input chunks before levels and VAD."""
