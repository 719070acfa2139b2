"""Offline command-line tools: prepare data, build vocabularies, plan memory and sharding."""
