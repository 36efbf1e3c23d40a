"""Whom to answer: who said a turn (voices) and whether the bot answers it (the reply policy)."""
