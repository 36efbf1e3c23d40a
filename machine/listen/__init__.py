"""Hearing: echo gate, silero-vad, endpointing, the optional denoiser, and whisperx speech to text."""
