"""Small pieces two stages both use (audio levels, names people give, handing sentences to speech)."""
