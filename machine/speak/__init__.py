"""Speaking: sentences synthesised ahead while earlier ones play, captions, the TTS backends."""
