"""Masked-LM corruption (BERT): select ~15% of words, replace their pieces 80/10/10.

Selection is by whole word: `word_ids` gives, for every position, the index of the word
its piece came from (-1 for special tokens and padding, which are never selected), and a
word is selected with probability `rate`, all of its pieces together. Each selected piece
is then replaced by [MASK] (80%), a random token (10%) or kept (10%); the loss is on the
selected pieces only. Runs on host numpy with a seeded Generator, so a resumed run
re-creates the same masks.
"""

import numpy as np

EVAL_STREAM = 2**31 - 1  # seed component that sets evaluation masks apart from epochs


def mask_batch(
    ids: np.ndarray,
    word_ids: np.ndarray,
    rng: np.random.Generator,
    *,
    mask_id: int,
    vocab_size: int,
    num_special: int,
    rate: float = 0.15,
    whole_word: bool = True,
):
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
    return dict(inputs=inputs.astype(np.int32), targets=ids.astype(np.int32), weights=selected.astype(np.float32))


def corrupt(tokens: np.ndarray, row_seeds, mask_args: dict) -> dict:
    """Masks each row of word-vocabulary tokens [B, T] with its own Generator(row_seeds[i])
    (a token is a word; <pad> positions are never selected)."""
    word_ids = np.where(tokens != 0, np.arange(tokens.shape[1])[None, :], -1)  # 0 = <pad>
    rows = [
        mask_batch(tokens[i : i + 1], word_ids[i : i + 1], np.random.default_rng(s), **mask_args)
        for i, s in enumerate(row_seeds)
    ]
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


class MaskedTrainIterator:
    """The LM train iterator's windows, masked per row with seeds (seed, step, global row):
    masks do not depend on the host split, and a resumed run re-creates them. `state` and
    `stats` are the LM iterator's."""

    def __init__(self, lm_iterator, rows: slice, seed: int, mask_args: dict):
        self.lm, self.rows, self.seed, self.mask_args = lm_iterator, rows, seed, mask_args

    state = property(lambda self: self.lm.state)
    stats = property(lambda self: self.lm.stats)

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        step = self.lm.step
        tokens = next(self.lm)['targets']  # each window's last seq_len tokens: disjoint windows
        seeds = [(self.seed, step, r) for r in range(self.rows.start, self.rows.start + len(tokens))]
        return corrupt(tokens, seeds, self.mask_args)


def eval_masks(tokens: np.ndarray, index: np.ndarray, seed: int, mask_args: dict) -> dict:
    """Evaluation masks: row i seeded by (seed, EVAL_STREAM, its index in the split)."""
    return corrupt(tokens, [(seed, EVAL_STREAM, int(i)) for i in index], mask_args)
