"""The bot's eyes: screen capture, chatbox bubbles and nameplates read from it, and who is in view."""
