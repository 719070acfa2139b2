"""Tokenizers and vocabularies (word-level first); no dependency on models or data."""
