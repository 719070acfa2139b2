"""Masked-LM corruption (BERT): select ~15% of words, replace their pieces 80/10/10.

Selection is by whole word: `word_ids` gives, for every position, the index of the word
its piece came from (-1 for special tokens and padding, which are never selected), and a
word is selected with probability `rate`, all of its pieces together. Each selected piece
is then replaced by [MASK] (80%), a random token (10%) or kept (10%); the loss is on the
selected pieces only. Runs on host numpy with a seeded Generator, so a resumed run
re-creates the same masks.
"""

import numpy as np


def mask_batch(ids: np.ndarray, word_ids: np.ndarray, rng: np.random.Generator, *, mask_id: int,
               vocab_size: int, num_special: int, rate: float = 0.15, whole_word: bool = True):
    """ids, word_ids [B, T] -> dict(inputs, targets, weights) [B, T].

    Random replacements are drawn from ids >= num_special (never a special token). With
    whole_word=False every piece is selected on its own.
    """
    ids, word_ids = np.asarray(ids), np.asarray(word_ids)
    maskable = word_ids >= 0
    if whole_word:
        n_words = int(word_ids.max(initial=-1)) + 1
        chosen = rng.random((ids.shape[0], max(n_words, 1))) < rate
        selected = maskable & np.take_along_axis(chosen, np.maximum(word_ids, 0), axis=1)
    else:
        selected = maskable & (rng.random(ids.shape) < rate)
    action = rng.random(ids.shape)
    random_ids = rng.integers(num_special, vocab_size, ids.shape)
    inputs = np.where(selected & (action < 0.8), mask_id, ids)
    inputs = np.where(selected & (action >= 0.8) & (action < 0.9), random_ids, inputs)
    return dict(inputs=inputs.astype(np.int32), targets=ids.astype(np.int32),
                weights=selected.astype(np.float32))
