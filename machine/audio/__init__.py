"""Live audio through PyAudio: finding devices, capturing the world, playing the bot's voice."""
