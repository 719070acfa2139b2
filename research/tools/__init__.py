"""Offline command-line tools (prepare data, build vocabularies, inspect checkpoints)."""
