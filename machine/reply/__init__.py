"""Replying: the thinker (memory + chat model), sentences, the three-strike checks, chat backends."""
