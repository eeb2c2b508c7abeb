"""Supervised modules: datasets from the game, perception, sequence, imitation (Keras)."""
