"""Word-level labels <-> subword pieces.

`word_ids[i]` is the index of the word that piece i came from (-1 for special tokens and
padding), as produced by a subword tokenizer's `encode_words`.
"""

import numpy as np

IGNORE = -1  # label of pieces that carry no loss


def encode_words(words, encode_word) -> tuple[list[int], list[int]]:
    """(ids, word_ids) of pre-split words, `encode_word(word)` giving each word's ids; a word
    giving no ids (e.g. only spaces) has none."""
    ids, word_ids = [], []
    for i, word in enumerate(words):
        pieces = encode_word(word)
        ids.extend(pieces)
        word_ids.extend([i] * len(pieces))
    return ids, word_ids


def labels_to_pieces(word_labels, word_ids, mode: str = 'first') -> np.ndarray:
    """Per-piece labels: the word's label on its first piece ('first') or on all its pieces
    ('all'); IGNORE elsewhere."""
    if mode not in ('first', 'all'):
        raise ValueError(f"mode={mode!r}: use 'first' or 'all'")
    word_ids = np.asarray(word_ids, np.int64)
    word_labels = np.asarray(word_labels)
    out = np.full(word_ids.shape, IGNORE, np.int32)
    valid = word_ids >= 0
    out[valid] = word_labels[word_ids[valid]]
    if mode == 'first':
        previous = np.concatenate([[-1], word_ids[:-1]])
        out[valid & (word_ids == previous)] = IGNORE
    return out


def pieces_to_words(piece_predictions, word_ids, num_words: int) -> np.ndarray:
    """Word-level predictions read from each word's first piece; words with no piece
    (e.g. truncated away) get IGNORE."""
    word_ids = np.asarray(word_ids)
    out = np.full(num_words, IGNORE, np.int32)
    for i in range(len(word_ids) - 1, -1, -1):  # backwards, so the first piece wins
        if word_ids[i] >= 0:
            out[word_ids[i]] = piece_predictions[i]
    return out
